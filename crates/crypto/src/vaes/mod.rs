//! Rampart's own multi-buffer AES-GCM for x86-64 (VAES/VPCLMULQDQ with AVX-512, and
//! AES-NI/PCLMULQDQ): interleaves the packets of a burst on the AES units.
