//! The login state and its rules: the pending login code and whom it was issued to, sliding
//! failure logs per address and overall, the lockouts, the guessing alarms' windows and the one
//! session. Every store (in-process, `state_dir`, Redis) keeps exactly this value and applies
//! exactly these rules, so the three cannot drift apart.
//!
//! Rules (see SECURITY.md, "Brute force"):
//! - A failure of one limit key (an IPv4 address or an IPv6 /64) is a wrong password, a wrong or
//!   expired code, or a code attempt for which that key holds no pending code. In any interval
//!   of `lockout` at most `max_attempts` failures of one key are evaluated: the one that reaches
//!   the limit locks the key for `lockout` (attempts during a lockout are refused uncounted).
//! - The pending code belongs to the key whose right password earned it: from any other key a
//!   code attempt is `NoPendingOtp`, counts against that key only and leaves the code alone.
//! - Only wrong codes (which need the password) count overall: `max_global` of them in any
//!   interval of `lockout` lock every login for `lockout`. Wrong passwords never do; instead,
//!   more than `max_attempts` of them from all keys within a window raise the `password`
//!   guessing alarm, once per window. The first wrong code raises the `code` guessing alarm,
//!   once per window.
//! - An attempt is counted before it is evaluated and given back only when it succeeds, so
//!   racing attempts cannot exceed the limits.
//!
//! Pure logic: times are milliseconds on the store's clock, passed in. It must never read a
//! clock, take a lock, log, or hold a password; it holds the pending code only as the stores do.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use subtle::ConstantTimeEq;

use super::address::LimitKey;
use super::session::TokenHash;
use crate::otp::Otp;

/// Most keys tracked at once; past it the least recently failing unlocked key is forgotten.
/// Every transaction reads and writes the whole state (a file, a Redis value), so this bounds
/// what one attempt costs during a flood from many addresses (about 100 KiB of state): at
/// 10,000 a flood made each attempt slow enough on Redis that waiting attempts, the admin's
/// among them, ran out of time.
pub const MAX_TRACKED: usize = 2_048;
/// Password failures remembered overall (for the alarm's count).
const MAX_PASSWORD_LOG: usize = 1024;
/// Ended and replaced sessions remembered, so a refused check can say why.
const MAX_PAST_SESSIONS: usize = 8;
/// Used recovery codes remembered (a set holds at most this many codes).
pub(crate) const MAX_USED_RECOVERY: usize = 256;

/// The configured limits, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failures of one key per window that lock it.
    pub max_attempts: u32,
    /// The window, and the length of a lockout.
    pub lockout_ms: u64,
    /// Wrong codes per window, from all keys, that lock every login.
    pub max_global: u32,
}

/// Why an attempt was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This key is locked.
    KeyLocked {
        /// Milliseconds until it is lifted.
        left_ms: u64,
    },
    /// Every login is locked (too many wrong codes overall).
    GlobalLocked {
        /// Milliseconds until it is lifted.
        left_ms: u64,
    },
}

/// An alarm the caller must raise after the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alarm {
    /// Wrong codes or passwords below the lockout limits (`break_glass_guessing`).
    Guessing {
        /// `code` or `password`.
        kind: GuessKind,
        /// Failures of that kind in the window.
        failures: u32,
        /// Distinct keys they came from.
        addresses: u32,
    },
    /// The overall limit locked every login (`break_glass_lockout`).
    GlobalLockout {
        /// Wrong codes in the window.
        failures: u32,
    },
}

/// What was being guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuessKind {
    /// The emailed code (after a right password).
    Code,
    /// The password.
    Password,
}

impl GuessKind {
    /// The alarm's `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            GuessKind::Code => "code",
            GuessKind::Password => "password",
        }
    }
}

/// What counting one failure did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    /// The failure's time (identifies it for a refund).
    pub at: u64,
    /// It locked its key.
    pub key_locked: bool,
    /// It locked every login (wrong codes only).
    pub global_locked: bool,
    /// It raised the code guessing alarm (so a refund takes the alarm's window back too).
    pub code_alarm: bool,
}

/// The verdict on a code attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeVerdict {
    /// The code was this key's and right: the key's failures are forgotten.
    Granted,
    /// Denied; the failure was counted.
    Denied {
        /// `Invalid`, `Expired` or `NoPendingOtp`.
        why: crate::Error,
        /// What counting it did.
        counted: Counted,
    },
}

/// The pending login code.
#[derive(Clone)]
pub struct PendingCode {
    /// The code.
    pub code: Otp,
    /// The key whose right password earned it.
    pub owner: LimitKey,
    /// When it was issued.
    pub issued: u64,
    /// Its lifetime.
    pub ttl: u64,
}

/// The active session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SessionRec {
    /// Its token's SHA-256.
    pub token: TokenHash,
    /// When it began.
    pub issued: u64,
    /// Its lifetime.
    pub ttl: u64,
}

/// Why a session check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// Its holder (or an operator) ended it.
    Ended,
    /// It outlived `session_ttl_seconds`.
    Expired,
    /// A newer login replaced it.
    Replaced,
    /// No session with that token is known.
    Unknown,
}

impl SessionRefusal {
    /// The reason, as `bg_last_error` gives it.
    pub fn reason(self) -> &'static str {
        match self {
            SessionRefusal::Ended => "the session was ended",
            SessionRefusal::Expired => "the session has expired",
            SessionRefusal::Replaced => "the session was replaced by a newer break-glass login",
            SessionRefusal::Unknown => "no such session",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Ended,
    Replaced,
}

/// One key's failures (sliding log, oldest first) and lockout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Row {
    failures: Vec<u64>,
    locked_until: Option<u64>,
}

/// What `breakglass status` shows: no code, no token.
#[derive(Debug, Clone, Default)]
pub struct StatusView {
    /// Age of the pending code in ms, and whether it is past its TTL.
    pub pending_age_ms: Option<(u64, bool)>,
    /// Locked keys and the ms left.
    pub locked: Vec<(LimitKey, u64)>,
    /// Keys with failures in the window, and how many.
    pub failing: Vec<(LimitKey, u32)>,
    /// Wrong codes in the window, overall.
    pub code_failures: u32,
    /// The overall lockout's ms left.
    pub global_locked_ms: Option<u64>,
    /// The active session's age in ms.
    pub session_age_ms: Option<u64>,
    /// Recovery codes used (of the current set).
    pub recovery_used: usize,
}

/// Everything one store keeps.
#[derive(Clone, Default)]
pub struct LoginState {
    pending: Option<PendingCode>,
    rows: BTreeMap<LimitKey, Row>,
    /// Wrong codes overall: (time, key), oldest first.
    code_failures: Vec<(u64, LimitKey)>,
    global_locked_until: Option<u64>,
    /// Wrong passwords overall: (time, key), oldest first.
    password_failures: Vec<(u64, LimitKey)>,
    code_alarm_at: Option<u64>,
    password_alarm_at: Option<u64>,
    session: Option<SessionRec>,
    past: Vec<(TokenHash, Fate)>,
    /// Used recovery codes: the set's id and the code's index.
    used_recovery: Vec<([u8; 32], u32)>,
}

fn in_window(t: u64, now: u64, l: &Limits) -> bool {
    // A time after `now` (a clock stepped back) stays in the window: fail closed.
    now.saturating_sub(t) < l.lockout_ms
}

impl LoginState {
    fn prune(&mut self, now: u64, l: &Limits) {
        self.rows.retain(|_, r| {
            r.failures.retain(|&t| in_window(t, now, l));
            if r.locked_until.is_some_and(|u| now >= u) {
                r.locked_until = None;
            }
            !r.failures.is_empty() || r.locked_until.is_some()
        });
        self.code_failures.retain(|&(t, _)| in_window(t, now, l));
        self.password_failures
            .retain(|&(t, _)| in_window(t, now, l));
        if self.global_locked_until.is_some_and(|u| now >= u) {
            self.global_locked_until = None;
        }
        if self.session.is_some_and(|s| expired(s.issued, s.ttl, now)) {
            self.session = None;
        }
    }

    /// Whether `key` may try now.
    pub fn admit(&mut self, key: LimitKey, now: u64, l: &Limits) -> Result<(), Refusal> {
        self.prune(now, l);
        if let Some(u) = self.global_locked_until {
            return Err(Refusal::GlobalLocked { left_ms: u - now });
        }
        if let Some(u) = self.rows.get(&key).and_then(|r| r.locked_until) {
            return Err(Refusal::KeyLocked { left_ms: u - now });
        }
        Ok(())
    }

    /// Counts a failure of `key` (already admitted).
    fn fail_key(&mut self, key: LimitKey, now: u64, l: &Limits) -> bool {
        if !self.rows.contains_key(&key) && self.rows.len() >= MAX_TRACKED {
            // Forget the key whose latest failure is oldest, an unlocked one if there is any: a
            // flood from many addresses costs old rows, never a refusal of everyone, and the
            // state never grows past the bound (a larger one would not be read back).
            let stalest = |locked: bool| {
                self.rows
                    .iter()
                    .filter(|(_, r)| locked || r.locked_until.is_none())
                    .min_by_key(|(_, r)| r.failures.last().copied().unwrap_or(0))
                    .map(|(k, _)| *k)
            };
            if let Some(oldest) = stalest(false).or_else(|| stalest(true)) {
                self.rows.remove(&oldest);
            }
        }
        let row = self.rows.entry(key).or_default();
        row.failures.push(now);
        if row.failures.len() >= l.max_attempts as usize && row.locked_until.is_none() {
            row.locked_until = Some(now.saturating_add(l.lockout_ms));
            return true;
        }
        false
    }

    fn unfail_key(&mut self, key: LimitKey, c: &Counted) {
        if let Some(row) = self.rows.get_mut(&key) {
            if let Some(i) = row.failures.iter().rposition(|&t| t == c.at) {
                row.failures.remove(i);
            }
            if c.key_locked {
                row.locked_until = None;
            }
            if row.failures.is_empty() && row.locked_until.is_none() {
                self.rows.remove(&key);
            }
        }
    }

    /// Admits a password attempt and counts it as a failure before the (slow, unlocked) hash
    /// check. Give it back with [`refund_password`](Self::refund_password) when it was right.
    pub fn reserve_password(
        &mut self,
        key: LimitKey,
        now: u64,
        l: &Limits,
    ) -> Result<Counted, Refusal> {
        self.admit(key, now, l)?;
        let key_locked = self.fail_key(key, now, l);
        self.password_failures.push((now, key));
        if self.password_failures.len() > MAX_PASSWORD_LOG {
            self.password_failures.remove(0);
        }
        Ok(Counted {
            at: now,
            key_locked,
            ..Counted::default()
        })
    }

    /// The password was right: takes back what [`reserve_password`](Self::reserve_password)
    /// counted.
    pub fn refund_password(&mut self, key: LimitKey, c: &Counted) {
        self.unfail_key(key, c);
        if let Some(i) = self
            .password_failures
            .iter()
            .rposition(|&(t, k)| t == c.at && k == key)
        {
            self.password_failures.remove(i);
        }
    }

    /// The password was wrong (its failure stands): the password alarm, when more than
    /// `max_attempts` wrong passwords from all keys fell within the window, once per window.
    pub fn password_alarm(&mut self, now: u64, l: &Limits) -> Option<Alarm> {
        self.prune(now, l);
        let n = self.password_failures.len();
        if n <= l.max_attempts as usize
            || self.password_alarm_at.is_some_and(|t| in_window(t, now, l))
        {
            return None;
        }
        self.password_alarm_at = Some(now);
        Some(Alarm::Guessing {
            kind: GuessKind::Password,
            failures: n as u32,
            addresses: distinct(self.password_failures.iter().map(|&(_, k)| k)),
        })
    }

    /// Issues `code` to `owner`, replacing any pending code.
    pub fn issue(&mut self, code: Otp, owner: LimitKey, now: u64, ttl: u64) {
        self.pending = Some(PendingCode {
            code,
            owner,
            issued: now,
            ttl,
        });
    }

    /// Withdraws the pending code if it is `owner`'s (its email could not be queued).
    pub fn withdraw(&mut self, owner: LimitKey) {
        if self.pending.as_ref().is_some_and(|p| p.owner == owner) {
            self.pending = None;
        }
    }

    /// Whether `key` holds an unexpired pending code (a right password came first).
    pub fn holds_code(&self, key: LimitKey, now: u64) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| p.owner == key && !expired(p.issued, p.ttl, now))
    }

    /// A code attempt from `key`, already admitted by the caller's [`admit`](Self::admit)
    /// in the same transaction. `submitted` is `None` for input that is not six digits.
    /// Returns the verdict and the alarms to raise.
    pub fn attempt_code(
        &mut self,
        key: LimitKey,
        submitted: Option<&Otp>,
        now: u64,
        l: &Limits,
    ) -> (CodeVerdict, Vec<Alarm>) {
        let mine = self.pending.as_ref().is_some_and(|p| p.owner == key);
        if !mine {
            // Someone else's code (or none): counted against this key only, the code stays.
            let counted = Counted {
                at: now,
                key_locked: self.fail_key(key, now, l),
                ..Counted::default()
            };
            return (
                CodeVerdict::Denied {
                    why: crate::Error::NoPendingOtp,
                    counted,
                },
                Vec::new(),
            );
        }
        let p = self.pending.take().expect("checked above");
        let why = if expired(p.issued, p.ttl, now) {
            crate::Error::Expired
        } else if submitted.is_some_and(|c| p.code.ct_eq(c)) {
            self.rows.remove(&key);
            return (CodeVerdict::Granted, Vec::new());
        } else {
            crate::Error::Invalid
        };
        let (counted, alarms) = self.count_code_failure(key, now, l, why == crate::Error::Invalid);
        (CodeVerdict::Denied { why, counted }, alarms)
    }

    /// Counts one code failure of `key` (a wrong one also overall) and says which alarms it
    /// raises. A recovery code's failure is counted here too.
    pub fn count_code_failure(
        &mut self,
        key: LimitKey,
        now: u64,
        l: &Limits,
        wrong: bool,
    ) -> (Counted, Vec<Alarm>) {
        let mut alarms = Vec::new();
        let key_locked = self.fail_key(key, now, l);
        let mut global_locked = false;
        if wrong {
            self.code_failures.push((now, key));
            let n = self.code_failures.len();
            if !self.code_alarm_at.is_some_and(|t| in_window(t, now, l)) {
                self.code_alarm_at = Some(now);
                alarms.push(Alarm::Guessing {
                    kind: GuessKind::Code,
                    failures: n as u32,
                    addresses: self.code_addresses(),
                });
            }
            if n >= l.max_global as usize && self.global_locked_until.is_none() {
                self.global_locked_until = Some(now.saturating_add(l.lockout_ms));
                global_locked = true;
                alarms.push(Alarm::GlobalLockout { failures: n as u32 });
            }
        }
        (
            Counted {
                at: now,
                key_locked,
                global_locked,
                code_alarm: alarms.iter().any(|a| {
                    matches!(
                        a,
                        Alarm::Guessing {
                            kind: GuessKind::Code,
                            ..
                        }
                    )
                }),
            },
            alarms,
        )
    }

    /// Takes back a code failure counted by
    /// [`count_code_failure`](Self::count_code_failure) (a right recovery code).
    pub fn refund_code_failure(&mut self, key: LimitKey, c: &Counted) {
        self.unfail_key(key, c);
        if let Some(i) = self
            .code_failures
            .iter()
            .rposition(|&(t, k)| t == c.at && k == key)
        {
            self.code_failures.remove(i);
        }
        if c.global_locked {
            self.global_locked_until = None;
        }
        if c.code_alarm {
            self.code_alarm_at = None;
        }
    }

    /// Takes `key`'s pending code, if it holds one, for a recovery-code attempt: it is used
    /// up like an emailed code would be. False when `key` holds no unexpired code.
    pub fn take_code_for_recovery(&mut self, key: LimitKey, now: u64) -> bool {
        let held = self.holds_code(key, now);
        if self.pending.as_ref().is_some_and(|p| p.owner == key) {
            self.pending = None;
        }
        held
    }

    /// Marks recovery code `index` of set `set` used; false when it already was.
    pub fn use_recovery(&mut self, set: [u8; 32], index: u32) -> bool {
        self.used_recovery.retain(|(s, _)| *s == set);
        if self.used_recovery.contains(&(set, index)) {
            return false;
        }
        if self.used_recovery.len() >= MAX_USED_RECOVERY {
            return false;
        }
        self.used_recovery.push((set, index));
        true
    }

    /// Recovery codes of set `set` already used.
    pub fn recovery_used(&self, set: &[u8; 32]) -> usize {
        self.used_recovery.iter().filter(|(s, _)| s == set).count()
    }

    /// Whether recovery code `index` of `set` was used.
    pub fn recovery_is_used(&self, set: &[u8; 32], index: u32) -> bool {
        self.used_recovery.contains(&(*set, index))
    }

    fn code_addresses(&self) -> u32 {
        distinct(self.code_failures.iter().map(|&(_, k)| k))
    }

    /// Starts the one session, replacing any other.
    pub fn start_session(&mut self, token: TokenHash, now: u64, ttl: u64) {
        if let Some(old) = self.session.take() {
            self.remember(old.token, Fate::Replaced);
        }
        self.session = Some(SessionRec {
            token,
            issued: now,
            ttl,
        });
    }

    fn remember(&mut self, token: TokenHash, fate: Fate) {
        self.past.retain(|(t, _)| *t != token);
        self.past.push((token, fate));
        if self.past.len() > MAX_PAST_SESSIONS {
            self.past.remove(0);
        }
    }

    /// `Ok` while `token` is the active session's and it is younger than its TTL.
    pub fn check_session(&self, token: &TokenHash, now: u64) -> Result<(), SessionRefusal> {
        if let Some(s) = &self.session {
            if bool::from(s.token.ct_eq(token)) {
                return if expired(s.issued, s.ttl, now) {
                    Err(SessionRefusal::Expired)
                } else {
                    Ok(())
                };
            }
        }
        match self.past.iter().find(|(t, _)| bool::from(t.ct_eq(token))) {
            Some((_, Fate::Ended)) => Err(SessionRefusal::Ended),
            Some((_, Fate::Replaced)) => Err(SessionRefusal::Replaced),
            None => Err(SessionRefusal::Unknown),
        }
    }

    /// Ends the session whose token is `token`.
    pub fn end_session(&mut self, token: &TokenHash, now: u64) -> Result<(), SessionRefusal> {
        self.check_session(token, now)?;
        self.session = None;
        self.remember(*token, Fate::Ended);
        Ok(())
    }

    /// Ends whatever session is active (an operator's `breakglass session end`); true when
    /// there was one.
    pub fn end_any_session(&mut self, now: u64) -> bool {
        match self.session.take() {
            Some(s) if !expired(s.issued, s.ttl, now) => {
                self.remember(s.token, Fate::Ended);
                true
            }
            _ => false,
        }
    }

    /// Failures `key` may still make before it is locked (0 while it, or everyone, is).
    pub fn attempts_left(&mut self, key: LimitKey, now: u64, l: &Limits) -> u32 {
        if self.admit(key, now, l).is_err() {
            return 0;
        }
        let used = self.rows.get(&key).map_or(0, |r| r.failures.len() as u32);
        l.max_attempts.saturating_sub(used)
    }

    /// Forgets `key`'s failures and lockout; true when there were any.
    pub fn unlock(&mut self, key: LimitKey) -> bool {
        self.rows.remove(&key).is_some()
    }

    /// Forgets every key's failures, the wrong codes and the overall lockout.
    pub fn unlock_all(&mut self) {
        self.rows.clear();
        self.code_failures.clear();
        self.password_failures.clear();
        self.global_locked_until = None;
    }

    /// What an operator may see.
    pub fn status(&mut self, now: u64, l: &Limits, recovery_set: Option<&[u8; 32]>) -> StatusView {
        self.prune(now, l);
        StatusView {
            pending_age_ms: self
                .pending
                .as_ref()
                .map(|p| (now.saturating_sub(p.issued), expired(p.issued, p.ttl, now))),
            locked: self
                .rows
                .iter()
                .filter_map(|(k, r)| r.locked_until.map(|u| (*k, u - now)))
                .collect(),
            failing: self
                .rows
                .iter()
                .filter(|(_, r)| !r.failures.is_empty())
                .map(|(k, r)| (*k, r.failures.len() as u32))
                .collect(),
            code_failures: self.code_failures.len() as u32,
            global_locked_ms: self.global_locked_until.map(|u| u - now),
            session_age_ms: self.session.map(|s| now.saturating_sub(s.issued)),
            recovery_used: recovery_set.map_or(0, |s| self.recovery_used(s)),
        }
    }
}

fn distinct(keys: impl Iterator<Item = LimitKey>) -> u32 {
    let mut keys: Vec<LimitKey> = keys.collect();
    keys.sort();
    keys.dedup();
    keys.len() as u32
}

/// Whether something issued at `issued` with lifetime `ttl` is over at `now`. Issued "in the
/// future" (a clock stepped back) counts as over: a code must never outlive its TTL.
pub fn expired(issued: u64, ttl: u64, now: u64) -> bool {
    issued > now || now - issued >= ttl
}

// ----- The text form every file and blob store keeps -----

const MAGIC: &str = "breakglass-login-state 1";

fn key_text(k: LimitKey) -> String {
    match k {
        LimitKey::V4(a) => format!("4.{a}"),
        LimitKey::V6(p) => format!("6.{p:x}"),
    }
}

fn parse_key(t: &str) -> Option<LimitKey> {
    match t.split_once('.')? {
        ("4", n) => strict_u64(n)
            .and_then(|v| u32::try_from(v).ok())
            .map(LimitKey::V4),
        ("6", h) if !h.is_empty() && h.len() <= 16 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(h, 16).ok().map(LimitKey::V6)
        }
        _ => None,
    }
}

fn strict_u64(t: &str) -> Option<u64> {
    crate::text::decimal(t.as_bytes())
}

fn times(t: &str) -> Option<Vec<u64>> {
    if t == "-" {
        return Some(Vec::new());
    }
    t.split(',').map(strict_u64).collect()
}

fn join(v: &[u64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

fn hash32(t: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    // Lower case only: the form `encode` writes.
    (!t.bytes().any(|b| b.is_ascii_uppercase()))
        .then(|| hex::decode_to_slice(t, &mut out).ok())
        .flatten()
        .map(|()| out)
}

fn hex32(h: &[u8; 32]) -> String {
    crate::text::hex(h)
}

/// Why a stored state could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged(pub String);

impl LoginState {
    /// The text form: one record a line, then a SHA-256 over everything before it.
    pub fn encode(&self) -> String {
        let mut o = String::with_capacity(256);
        o.push_str(MAGIC);
        o.push('\n');
        if let Some(p) = &self.pending {
            let _ = writeln!(
                o,
                "code {} {} {} {}",
                key_text(p.owner),
                p.code.as_str(),
                p.issued,
                p.ttl
            );
        }
        for (k, r) in &self.rows {
            let until = r.locked_until.map_or("-".to_string(), |u| u.to_string());
            let _ = writeln!(o, "key {} {} {}", key_text(*k), join(&r.failures), until);
        }
        for (t, k) in &self.code_failures {
            let _ = writeln!(o, "wrongcode {t} {}", key_text(*k));
        }
        if let Some(u) = self.global_locked_until {
            let _ = writeln!(o, "globallock {u}");
        }
        for (t, k) in &self.password_failures {
            let _ = writeln!(o, "wrongpassword {t} {}", key_text(*k));
        }
        if let Some(t) = self.code_alarm_at {
            let _ = writeln!(o, "codealarm {t}");
        }
        if let Some(t) = self.password_alarm_at {
            let _ = writeln!(o, "passwordalarm {t}");
        }
        if let Some(s) = &self.session {
            let _ = writeln!(o, "session {} {} {}", hex32(&s.token), s.issued, s.ttl);
        }
        for (t, f) in &self.past {
            let fate = match f {
                Fate::Ended => "ended",
                Fate::Replaced => "replaced",
            };
            let _ = writeln!(o, "past {} {fate}", hex32(t));
        }
        for (s, i) in &self.used_recovery {
            let _ = writeln!(o, "recovery {} {i}", hex32(s));
        }
        let sum = crate::digest::sha256(&[o.as_bytes()]);
        let _ = writeln!(o, "sum {}", hex32(&sum));
        o
    }

    /// Parses [`encode`](Self::encode)'s form; anything else is [`Damaged`], never an empty
    /// state (which would reset every limit).
    pub fn decode(text: &[u8]) -> Result<LoginState, Damaged> {
        let bad = |what: &str| Damaged(what.to_owned());
        let text = std::str::from_utf8(text).map_err(|_| bad("not UTF-8"))?;
        let body_end = text
            .trim_end_matches('\n')
            .rfind('\n')
            .map(|i| i + 1)
            .ok_or_else(|| bad("too short"))?;
        let (body, last) = text.split_at(body_end);
        let sum = last
            .trim_end_matches('\n')
            .strip_prefix("sum ")
            .and_then(hash32)
            .ok_or_else(|| bad("no checksum line"))?;
        let want: [u8; 32] = crate::digest::sha256(&[body.as_bytes()]);
        if want != sum {
            return Err(bad("checksum mismatch"));
        }
        let mut lines = body.lines();
        if lines.next() != Some(MAGIC) {
            return Err(bad("unknown format"));
        }
        let mut s = LoginState::default();
        for (n, line) in lines.enumerate() {
            let f: Vec<&str> = line.split(' ').collect();
            let ok = match f.as_slice() {
                ["code", k, c, i, t] => (|| {
                    s.pending = Some(PendingCode {
                        owner: parse_key(k)?,
                        code: Otp::parse(c.as_bytes())?,
                        issued: strict_u64(i)?,
                        ttl: strict_u64(t)?,
                    });
                    Some(())
                })(),
                ["key", k, f, u] => (|| {
                    let row = Row {
                        failures: times(f)?,
                        locked_until: if *u == "-" {
                            None
                        } else {
                            Some(strict_u64(u)?)
                        },
                    };
                    s.rows.insert(parse_key(k)?, row);
                    Some(())
                })(),
                ["wrongcode", t, k] => (|| {
                    s.code_failures.push((strict_u64(t)?, parse_key(k)?));
                    Some(())
                })(),
                ["globallock", u] => strict_u64(u).map(|u| s.global_locked_until = Some(u)),
                ["wrongpassword", t, k] => (|| {
                    s.password_failures.push((strict_u64(t)?, parse_key(k)?));
                    Some(())
                })(),
                ["codealarm", t] => strict_u64(t).map(|t| s.code_alarm_at = Some(t)),
                ["passwordalarm", t] => strict_u64(t).map(|t| s.password_alarm_at = Some(t)),
                ["session", h, i, t] => (|| {
                    s.session = Some(SessionRec {
                        token: hash32(h)?,
                        issued: strict_u64(i)?,
                        ttl: strict_u64(t)?,
                    });
                    Some(())
                })(),
                ["past", h, fate] => (|| {
                    let fate = match *fate {
                        "ended" => Fate::Ended,
                        "replaced" => Fate::Replaced,
                        _ => return None,
                    };
                    s.past.push((hash32(h)?, fate));
                    Some(())
                })(),
                ["recovery", h, i] => (|| {
                    let i = u32::try_from(strict_u64(i)?).ok()?;
                    s.used_recovery.push((hash32(h)?, i));
                    Some(())
                })(),
                _ => None,
            };
            if ok.is_none() {
                return Err(Damaged(format!("line {} is malformed", n + 2)));
            }
        }
        if s.rows.len() > MAX_TRACKED
            || s.past.len() > MAX_PAST_SESSIONS
            || s.password_failures.len() > MAX_PASSWORD_LOG
        {
            return Err(bad("more records than the library ever writes"));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_attempts: 5,
        lockout_ms: 900_000,
        max_global: 20,
    };

    fn k(n: u32) -> LimitKey {
        LimitKey::V4(n)
    }

    fn code(c: &str) -> Otp {
        Otp::parse(c.as_bytes()).unwrap()
    }

    #[test]
    fn the_code_belongs_to_the_key_that_earned_it() {
        let mut s = LoginState::default();
        s.issue(code("123456"), k(1), 0, 600_000);
        // Another key: NoPendingOtp, counted against it only, the code stays.
        s.admit(k(2), 10, &L).unwrap();
        let (v, alarms) = s.attempt_code(k(2), Some(&code("123456")), 10, &L);
        assert!(matches!(
            v,
            CodeVerdict::Denied {
                why: crate::Error::NoPendingOtp,
                ..
            }
        ));
        assert!(alarms.is_empty());
        assert_eq!(s.code_failures.len(), 0);
        assert_eq!(s.attempts_left(k(2), 11, &L), 4);
        assert_eq!(s.attempts_left(k(1), 11, &L), 5);
        let (v, _) = s.attempt_code(k(1), Some(&code("123456")), 12, &L);
        assert_eq!(v, CodeVerdict::Granted);
    }

    #[test]
    fn wrong_passwords_never_lock_everyone_but_raise_the_password_alarm_once() {
        let mut s = LoginState::default();
        let mut alarms = 0;
        for n in 0..200u32 {
            if s.reserve_password(k(n), u64::from(n), &L).is_ok() {
                alarms += usize::from(s.password_alarm(u64::from(n), &L).is_some());
            }
        }
        assert_eq!(alarms, 1, "once per window");
        assert!(s.admit(k(9999), 300, &L).is_ok(), "no overall lockout");
        // The next window raises it again.
        s.reserve_password(k(5000), 900_200, &L).unwrap();
        for n in 0..6 {
            let _ = s.reserve_password(k(6000 + n), 900_300, &L);
        }
        assert!(s.password_alarm(900_301, &L).is_some());
    }

    #[test]
    fn wrong_codes_lock_everyone_and_the_first_raises_the_code_alarm() {
        let mut s = LoginState::default();
        let mut guessing = 0;
        let mut lockouts = 0;
        for n in 0..25u32 {
            let t = u64::from(n) * 1000;
            if s.admit(k(n), t, &L).is_err() {
                continue;
            }
            s.issue(code("111111"), k(n), t, 600_000);
            let (_, alarms) = s.attempt_code(k(n), Some(&code("222222")), t, &L);
            for a in alarms {
                match a {
                    Alarm::Guessing {
                        kind: GuessKind::Code,
                        failures: 1,
                        addresses: 1,
                    } => guessing += 1,
                    Alarm::GlobalLockout { failures: 20 } => lockouts += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!((guessing, lockouts), (1, 1));
        assert!(matches!(
            s.admit(k(999), 20_000, &L),
            Err(Refusal::GlobalLocked { .. })
        ));
        // The lockout runs from the 20th wrong code (t=19 s) for the window.
        assert!(s.admit(k(999), 19_000 + 900_000, &L).is_ok());
    }

    #[test]
    fn the_window_slides_so_a_boundary_burst_gets_no_more_than_the_limit() {
        // 1 failure at t0, 3 just before t0+L, more just after: a fixed window would allow 4
        // + 5 within a fraction of a second.
        let mut s = LoginState::default();
        let mut evaluated = Vec::new();
        let mut try_at = |s: &mut LoginState, t: u64| {
            if s.reserve_password(k(1), t, &L).is_ok() {
                evaluated.push(t);
            }
        };
        try_at(&mut s, 0);
        for i in 0..3 {
            try_at(&mut s, 899_000 + i);
        }
        for i in 0..5 {
            try_at(&mut s, 900_001 + i);
        }
        // Within any interval of L at most 5 were evaluated.
        for (i, &a) in evaluated.iter().enumerate() {
            let within = evaluated[i..]
                .iter()
                .filter(|&&b| b - a < L.lockout_ms)
                .count();
            assert!(within <= 5, "{evaluated:?}");
        }
    }

    #[test]
    fn a_refund_takes_back_exactly_what_was_counted() {
        let mut s = LoginState::default();
        for t in 0..4 {
            let _ = s.reserve_password(k(1), t, &L);
        }
        let fifth = s.reserve_password(k(1), 5, &L).unwrap();
        assert!(fifth.key_locked);
        assert_eq!(s.attempts_left(k(1), 5, &L), 0);
        s.refund_password(k(1), &fifth);
        assert_eq!(s.attempts_left(k(1), 6, &L), 1);
        assert_eq!(s.password_failures.len(), 4);
    }

    #[test]
    fn sessions_say_why_they_were_refused() {
        let mut s = LoginState::default();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        s.start_session(a, 0, 1000);
        assert_eq!(s.check_session(&a, 10), Ok(()));
        assert_eq!(s.check_session(&a, 1000), Err(SessionRefusal::Expired));
        s.start_session(b, 20, 1000);
        assert_eq!(s.check_session(&a, 30), Err(SessionRefusal::Replaced));
        s.end_session(&b, 40).unwrap();
        assert_eq!(s.check_session(&b, 50), Err(SessionRefusal::Ended));
        assert_eq!(
            s.check_session(&[3u8; 32], 50),
            Err(SessionRefusal::Unknown)
        );
    }

    #[test]
    fn a_code_issued_in_the_future_is_expired() {
        let mut s = LoginState::default();
        s.issue(code("123456"), k(1), 10_000, 600_000);
        let (v, _) = s.attempt_code(k(1), Some(&code("123456")), 5_000, &L);
        assert!(matches!(
            v,
            CodeVerdict::Denied {
                why: crate::Error::Expired,
                ..
            }
        ));
    }

    #[test]
    fn the_text_form_round_trips_and_damage_is_refused() {
        let mut s = LoginState::default();
        s.issue(
            code("012345"),
            LimitKey::V6(0x2001_0db8_0000_0001),
            5,
            600_000,
        );
        for t in 0..3 {
            let _ = s.reserve_password(k(7), t, &L);
        }
        s.start_session([9u8; 32], 3, 1000);
        s.start_session([8u8; 32], 4, 1000);
        assert!(s.use_recovery([5u8; 32], 3));
        let text = s.encode();
        let back = LoginState::decode(text.as_bytes()).unwrap();
        assert_eq!(back.encode(), text);
        // Any edit, a cut, or nothing at all is damage, never an empty state.
        let edited = text.replace("key 4.7", "key 4.8");
        assert!(LoginState::decode(edited.as_bytes()).is_err());
        assert!(LoginState::decode(&text.as_bytes()[..text.len() / 2]).is_err());
        assert!(LoginState::decode(b"").is_err());
        assert!(LoginState::decode(b"\n\n").is_err());
        assert_eq!(
            LoginState::decode(LoginState::default().encode().as_bytes())
                .unwrap()
                .encode(),
            LoginState::default().encode()
        );
    }

    #[test]
    fn a_table_full_of_locked_keys_stays_within_the_bound_and_reads_back() {
        let one = Limits {
            max_attempts: 1,
            ..L
        };
        let mut s = LoginState::default();
        for n in 0..(MAX_TRACKED as u32 + 50) {
            s.reserve_password(k(n), u64::from(n), &one).unwrap();
        }
        assert_eq!(s.rows.len(), MAX_TRACKED);
        assert!(LoginState::decode(s.encode().as_bytes()).is_ok());
    }

    #[test]
    fn a_full_table_forgets_the_stalest_key_not_everyone() {
        let lots = Limits {
            max_attempts: 1000,
            ..L
        };
        let mut s = LoginState::default();
        for n in 0..(MAX_TRACKED as u32 + 10) {
            let _ = s.reserve_password(k(n), u64::from(n), &lots);
        }
        assert_eq!(s.rows.len(), MAX_TRACKED);
        assert!(!s.rows.contains_key(&k(0)));
        assert!(s.rows.contains_key(&k(MAX_TRACKED as u32 + 9)));
    }
}
