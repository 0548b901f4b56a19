//! The crypto worker pool: a few threads that compute the shared secrets the endpoint hands
//! out ([`DhJob`]s), check and make the signatures of responders' IKE_AUTH ([`AuthJob`]s:
//! certificate chains, RSA, ECDSA, Ed25519) and, when idle, keep a supply of fresh key shares for every group in
//! use, so that the event loop never does a scalar multiplication or a modular exponentiation
//! itself.
//!
//! Jobs go before supply; a supply that runs dry makes shares inline on the event loop (counted
//! as misses, never a stall). Workers never touch the endpoint, sockets or the SA database; key
//! shares and secrets stay in zeroizing types and are never logged.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use rampart_telemetry::LatencyCell;

use crate::waker::Waker;
use rampart_ike::crypto::{DhGroup, KeyShare, RandomSource, SystemRandom};
use rampart_ike::offload::{AuthDone, AuthJob, DhDone, DhJob, KeyShareSource};

/// A finished job of either kind, for the event loop.
#[derive(Debug)]
pub enum Done {
    /// A shared secret.
    Dh(DhDone),
    /// A responder's IKE_AUTH signature work.
    Auth(AuthDone),
}

enum Work {
    Agree(DhJob),
    Auth(Box<AuthJob>),
    /// A share was taken: top the supplies up.
    Refill,
    Stop,
}

/// Counters of the pool, shared with the stats output.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Shared secrets computed by workers.
    pub jobs_done: AtomicU64,
    /// IKE_AUTH signature checks (and our signatures) done by workers.
    pub auth_jobs_done: AtomicU64,
    /// Key shares generated ahead by workers.
    pub shares_made: AtomicU64,
    /// Key shares taken from the supply.
    pub shares_taken: AtomicU64,
    /// Key shares the event loop had to make itself (supply empty).
    pub shares_missed: AtomicU64,
    /// Key shares left to the job that needed them (supply empty, the job waits anyway).
    pub shares_deferred: AtomicU64,
}

/// The worker threads.
pub struct DhPool {
    work: Sender<Work>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<PoolStats>,
}

impl std::fmt::Debug for DhPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhPool").field("threads", &self.threads.len()).finish_non_exhaustive()
    }
}

/// The supply of precomputed key shares, for [`rampart_ike::Endpoint::set_key_share_source`].
pub struct PooledShares {
    supply: HashMap<DhGroup, Receiver<KeyShare>>,
    work: Sender<Work>,
    stats: Arc<PoolStats>,
}

impl KeyShareSource for PooledShares {
    fn take_ready(&mut self, group: DhGroup, _rng: &mut dyn RandomSource) -> Option<KeyShare> {
        let got = self.supply.get(&group).and_then(|rx| rx.try_recv().ok());
        match got {
            Some(_) => self.stats.shares_taken.fetch_add(1, Ordering::Relaxed),
            None => self.stats.shares_deferred.fetch_add(1, Ordering::Relaxed),
        };
        let _ = self.work.send(Work::Refill);
        got
    }

    fn take(&mut self, group: DhGroup, rng: &mut dyn RandomSource) -> KeyShare {
        let got = self.supply.get(&group).and_then(|rx| rx.try_recv().ok());
        match got {
            Some(s) => {
                self.stats.shares_taken.fetch_add(1, Ordering::Relaxed);
                let _ = self.work.send(Work::Refill);
                s
            }
            None => {
                self.stats.shares_missed.fetch_add(1, Ordering::Relaxed);
                if self.supply.contains_key(&group) {
                    let _ = self.work.send(Work::Refill);
                }
                KeyShare::generate(group, rng)
            }
        }
    }
}

/// Where the pool's threads record the time of each job (`rampart_ike_crypto_job_seconds`).
#[derive(Clone, Debug, Default)]
pub struct JobTiming {
    /// A shared secret computed (`job="dh"`).
    pub agree: LatencyCell,
    /// A key share generated ahead of time (`job="key_share"`).
    pub share: LatencyCell,
    /// A responder's IKE_AUTH: chain and signature checked, ours made (`job="auth"`).
    pub auth: LatencyCell,
}

impl DhPool {
    /// Starts `workers` threads. Finished jobs come out of the returned receiver, each followed
    /// by a wake-up of the event loop. `precompute` shares are kept ready for each of `groups`
    /// (0: none). Each job's time goes to `timing`.
    pub fn start(
        workers: usize,
        precompute: usize,
        groups: &[DhGroup],
        waker: Arc<Waker>,
        timing: JobTiming,
    ) -> std::io::Result<(DhPool, PooledShares, Receiver<Done>)> {
        let (done, done_rx) = crossbeam_channel::unbounded();
        let (work_tx, work_rx) = crossbeam_channel::unbounded::<Work>();
        let stats = Arc::new(PoolStats::default());
        let mut supply = HashMap::new();
        let mut fill: Vec<(DhGroup, Sender<KeyShare>)> = Vec::new();
        if precompute > 0 {
            for g in groups {
                if supply.contains_key(g) {
                    continue;
                }
                let (tx, rx) = crossbeam_channel::bounded(precompute);
                supply.insert(*g, rx);
                fill.push((*g, tx));
            }
        }
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let (work_rx, done, waker, stats, fill, timing) =
                (work_rx.clone(), done.clone(), waker.clone(), stats.clone(), fill.clone(), timing.clone());
            let t = std::thread::Builder::new()
                .name(format!("ike-dh-{i}"))
                .spawn(move || worker(&work_rx, &done, &waker, &stats, &fill, &timing))?;
            threads.push(t);
        }
        let shares = PooledShares { supply, work: work_tx.clone(), stats: stats.clone() };
        Ok((DhPool { work: work_tx, threads, stats }, shares, done_rx))
    }

    /// Queues a job.
    pub fn submit(&self, job: DhJob) {
        let _ = self.work.send(Work::Agree(job));
    }

    /// Queues a responder's IKE_AUTH signature work.
    pub fn submit_auth(&self, job: AuthJob) {
        let _ = self.work.send(Work::Auth(Box::new(job)));
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<PoolStats> {
        &self.stats
    }

    /// How many worker threads.
    pub fn workers(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for DhPool {
    fn drop(&mut self) {
        for _ in &self.threads {
            let _ = self.work.send(Work::Stop);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn worker(
    work: &Receiver<Work>,
    done: &Sender<Done>,
    waker: &Waker,
    stats: &PoolStats,
    fill: &[(DhGroup, Sender<KeyShare>)],
    timing: &JobTiming,
) {
    let mut rng = SystemRandom::new();
    let run = |job: DhJob| {
        let started = Instant::now();
        let result = job.run();
        timing.agree.record(started.elapsed());
        let _ = done.send(Done::Dh(result));
        stats.jobs_done.fetch_add(1, Ordering::Relaxed);
        waker.wake();
    };
    let auth = |job: Box<AuthJob>| {
        let started = Instant::now();
        let result = job.run();
        timing.auth.record(started.elapsed());
        let _ = done.send(Done::Auth(result));
        stats.auth_jobs_done.fetch_add(1, Ordering::Relaxed);
        waker.wake();
    };
    loop {
        // Jobs first: an IKE_SA_INIT waits for each of them.
        match work.try_recv() {
            Ok(Work::Agree(job)) => {
                run(job);
                continue;
            }
            Ok(Work::Auth(job)) => {
                auth(job);
                continue;
            }
            Ok(Work::Refill) => {}
            Ok(Work::Stop) | Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {}
        }
        // Then one share for the emptiest supply.
        if let Some((g, tx)) = fill.iter().filter(|(_, tx)| !tx.is_full()).min_by_key(|(_, tx)| tx.len()) {
            let started = Instant::now();
            let share = KeyShare::generate(*g, &mut rng);
            timing.share.record(started.elapsed());
            match tx.try_send(share) {
                Ok(()) => {
                    stats.shares_made.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return,
            }
            continue;
        }
        // Nothing to do: sleep until there is.
        match work.recv() {
            Ok(Work::Agree(job)) => run(job),
            Ok(Work::Auth(job)) => auth(job),
            Ok(Work::Refill) => {}
            Ok(Work::Stop) | Err(_) => return,
        }
    }
}
