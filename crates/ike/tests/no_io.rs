//! The protocol core does no I/O (DESIGN.md rule 1, STYLE.md 17): its sources name no socket,
//! file, thread, process or system clock. Its Cargo.toml keeps the crates that could do I/O out;
//! this test keeps the standard library's out, so that an edit bringing them into `src/` fails
//! here, not in review. The core takes its clock from the caller: `Instant` values are fine,
//! `Instant::now()` is not.

use std::path::{Path, PathBuf};

/// Paths the core must not name (a `use` of them included, however the use tree is written).
const FORBIDDEN_PATHS: &[&str] = &[
    "std::net::UdpSocket",
    "std::net::TcpListener",
    "std::net::TcpStream",
    "std::fs",
    "std::thread",
    "std::process",
    "std::os::unix::net",
    "std::time::SystemTime",
    "std::io::stdin",
    "std::io::stdout",
    "std::io::stderr",
    "std::env",
];

/// Names the core must not use however they were imported.
const FORBIDDEN_NAMES: &[&str] =
    &["UdpSocket", "TcpListener", "TcpStream", "UnixDatagram", "UnixStream", "SystemTime", "rustix", "libc"];

/// Calls that read the clock or print.
const FORBIDDEN_CALLS: &[&str] = &["Instant::now", "println!", "eprintln!", "print!", "eprint!", "dbg!"];

/// The code of a Rust source with comments removed and string and character literals emptied,
/// so that a doc comment saying "never calls Instant::now" does not count.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
            out.push(' ');
        } else if let Some(hashes) = raw_string_start(rest) {
            let close = format!("\"{}", "#".repeat(hashes));
            let body = hashes + 2 + usize::from(rest.starts_with('b'));
            i += body + rest[body..].find(&close).map_or(rest.len() - body, |e| e + close.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if let Some(len) = char_literal(rest) {
            i += len;
            out.push_str("' '");
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `r"`, `r#"`, `br"`...: the number of `#`.
fn raw_string_start(s: &str) -> Option<usize> {
    let s = s.strip_prefix('b').unwrap_or(s).strip_prefix('r')?;
    let hashes = s.bytes().take_while(|&c| c == b'#').count();
    s[hashes..].starts_with('"').then_some(hashes)
}

/// The length of a character literal at the start of `s` (not a lifetime).
fn char_literal(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('\'')?;
    if let Some(esc) = rest.strip_prefix('\\') {
        let end = esc.find('\'')?;
        return (end <= 10).then_some(end + 3);
    }
    let c = rest.chars().next()?;
    rest[c.len_utf8()..].starts_with('\'').then_some(c.len_utf8() + 2)
}

/// Stands for ` as ` in a use tree whose spaces were removed.
const ALIAS: &str = "#as#";

/// Every path a `use` tree names, written out (`use std::{fs, net::UdpSocket}` names `std::fs`
/// and `std::net::UdpSocket`).
fn use_paths(code: &str) -> Vec<String> {
    fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
        let (mut depth, mut start) = (0, 0);
        let mut parts = Vec::new();
        for (i, c) in tree.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&tree[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&tree[start..]);
        for p in parts.into_iter().filter(|p| !p.is_empty()) {
            match p.split_once('{') {
                Some((head, inner)) => {
                    expand(&format!("{prefix}{head}"), inner.strip_suffix('}').unwrap_or(inner), out)
                }
                None => out.push(format!("{prefix}{}", p.split(ALIAS).next().unwrap_or(p))),
            }
        }
    }
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        let after = &rest[at + 3..];
        let Some(end) = after.find(';') else { break };
        // `a as b` keeps a marker for `as`; every other space goes.
        let words: Vec<&str> = after[..end].split_whitespace().collect();
        let tree = words.join(" ").replace(" as ", ALIAS).replace(' ', "");
        expand("", tree.trim_start_matches("::"), &mut out);
        rest = &after[end..];
    }
    out
}

/// The first occurrence of `word` not inside a longer identifier.
fn find_word(s: &str, word: &str) -> Option<usize> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(i) = s[from..].find(word).map(|i| i + from) {
        let before = s[..i].chars().next_back().is_some_and(ident);
        let after = s[i + word.len()..].chars().next().is_some_and(ident);
        if !before && !after {
            return Some(i);
        }
        from = i + word.len();
    }
    None
}

/// What a source names that the core must not.
fn violations(src: &str) -> Vec<String> {
    let code = code_only(src);
    let flat: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let mut found = Vec::new();
    for path in use_paths(&code) {
        let path = path.trim_start_matches("::");
        if let Some(bad) = FORBIDDEN_PATHS.iter().find(|f| path == **f || path.starts_with(&format!("{f}::"))) {
            found.push(format!("use of {bad} ({path})"));
        }
    }
    for bad in FORBIDDEN_PATHS {
        if find_word(&flat, bad).is_some() || find_word(&code, bad).is_some() {
            found.push(format!("path {bad}"));
        }
    }
    for bad in FORBIDDEN_NAMES {
        if find_word(&code, bad).is_some() {
            found.push(format!("name {bad}"));
        }
    }
    for bad in FORBIDDEN_CALLS {
        let name = bad.trim_end_matches('!');
        if flat.match_indices(bad).any(|(i, _)| find_word(&flat[i..], name) == Some(0) && !preceded_by_ident(&flat, i))
        {
            found.push(format!("call {bad}"));
        }
    }
    found.sort();
    found.dedup();
    found
}

fn preceded_by_ident(s: &str, i: usize) -> bool {
    s[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_')
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_core_names_no_socket_file_thread_process_or_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 20, "the core's sources were not found under {}", src.display());
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for v in violations(&text) {
            bad.push(format!("{}: {v}", f.strip_prefix(&src).unwrap_or(f).display()));
        }
    }
    assert!(bad.is_empty(), "I/O in the protocol core (it belongs in rampart-ike-daemon):\n{}", bad.join("\n"));
}

#[test]
fn the_core_depends_on_no_crate_that_does_io() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).and_then(|d| d.split("\n[").next()).unwrap_or("");
    for c in [
        "rustix",
        "libc",
        "rampart-sadb",
        "crossbeam",
        "rampart-telemetry",
        "rampart-config",
        "toml",
        "serde",
        "tokio",
        "mio",
    ] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(c)),
            "rampart-ike depends on {c}: the core does no I/O"
        );
    }
}

/// The checks above can fail: each kind of I/O is caught, however it is written, and what a
/// comment or a string says is not.
#[test]
fn the_check_catches_io_and_ignores_comments_and_strings() {
    let caught = [
        "use std::fs;",
        "use std::{fs, net::IpAddr};",
        "use std::{\n    net::{IpAddr, UdpSocket},\n};",
        "use std::thread::spawn as go;",
        "use std::fs as files;",
        "use std::{fs as files};",
        "fn f() { let _ = std::fs::read(\"x\"); }",
        "fn f() { std::thread::sleep(d); }",
        "fn f() { let t = Instant::now(); }",
        "fn f() { let t = std::time::Instant :: now(); }",
        "fn f() -> SystemTime { todo!() }",
        "fn f() { let s = TcpStream::connect(a); }",
        "use std::os::unix::net::UnixDatagram;",
        "fn f() { rustix::time::clock_gettime(c); }",
        "fn f() { std::process::exit(1); }",
        "fn f() { println!(\"x\"); }",
    ];
    for src in caught {
        assert!(!violations(src).is_empty(), "not caught: {src}");
    }
    let clean = [
        "//! Never calls Instant::now() or std::fs::read.\nfn f(now: Instant) {}",
        "/* std::thread */ fn f() {}",
        "fn f() -> &'static str { \"std::fs::read and UdpSocket\" }",
        "fn f() -> &'static str { r#\"Instant::now() \"quoted\" \"# }",
        "fn f() -> char { '\"' } fn g() { let _ = std::net::IpAddr::from([0u8; 4]); }",
        "fn f<'a>(x: &'a str) -> &'a str { x } // use std::fs;",
        "fn instant_now_is_a_name() {} fn my_println() {}",
    ];
    for src in clean {
        assert_eq!(violations(src), Vec::<String>::new(), "false alarm: {src}");
    }
}
