//! The Redis/Valkey client the shared slot and the shared login store both use: the RESP2 wire
//! format (`resp`), one connection with its deadline (`conn`), the per-process pool of idle
//! connections (`pool`) and the command and script runner (`script`).
//!
//! Owns everything that touches the server's protocol; it knows nothing of codes, attempts or
//! sessions. It must never block past an operation's deadline, never hand a connection to
//! another process (after a fork), and never put the URL's credentials into an error or log.

pub(crate) mod conn;
pub(crate) mod pool;
pub(crate) mod resp;
pub(crate) mod script;
