//! Safe wrappers over the PAM handle: the user, `PAM_RHOST`, the conversation and the module
//! data that carries a granted session's token to `pam_sm_close_session`.
//!
//! Owns every dereference of PAM's pointers. It must never hold a decision: it only moves
//! text between PAM and [`crate::auth`]. Answers are copied into zeroizing buffers and PAM's
//! copies are wiped before they are freed.

use std::ffi::{c_char, c_int, c_void, CStr, CString};

use zeroize::{Zeroize, Zeroizing};

use crate::sys::*;

/// The module data name under which a granted session's token is kept.
const SESSION_DATA: &CStr = c"pam_breakglass_session";

/// A granted session, held by the process that authenticated.
pub struct Held {
    /// The process that was granted the session: a forked copy of the handle is not it.
    pub pid: u32,
    /// The session token (never logged).
    pub token: Zeroizing<String>,
}

/// A PAM handle given to an entry point (non-null, checked by the caller).
pub struct Handle(pub *mut PamHandle);

impl Handle {
    /// The user being authenticated (may prompt for it, as `pam_get_user` does).
    pub fn user(&self) -> Option<String> {
        let mut p: *const c_char = std::ptr::null();
        // SAFETY: a valid handle and an out pointer; PAM keeps the string while the handle lives.
        let rc = unsafe { pam_get_user(self.0, &mut p, std::ptr::null()) };
        if rc != PAM_SUCCESS || p.is_null() {
            return None;
        }
        // SAFETY: PAM returned a NUL-terminated string.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    /// `PAM_RHOST` as text, or `None` when it is unset or empty.
    pub fn rhost(&self) -> Option<Vec<u8>> {
        let mut p: *const c_void = std::ptr::null();
        // SAFETY: a valid handle and an out pointer.
        let rc = unsafe { pam_get_item(self.0, PAM_RHOST, &mut p) };
        if rc != PAM_SUCCESS || p.is_null() {
            return None;
        }
        // SAFETY: PAM_RHOST is a NUL-terminated string.
        let bytes = unsafe { CStr::from_ptr(p.cast()) }.to_bytes().to_vec();
        (!bytes.is_empty()).then_some(bytes)
    }

    /// One message through the application's conversation. For a prompt, the answer (`None`
    /// when the conversation failed or gave nothing); for a message, `Some` of an empty text.
    pub fn converse(&self, style: c_int, text: &str) -> Option<Zeroizing<Vec<u8>>> {
        let mut p: *const c_void = std::ptr::null();
        // SAFETY: a valid handle and an out pointer.
        let rc = unsafe { pam_get_item(self.0, PAM_CONV, &mut p) };
        if rc != PAM_SUCCESS || p.is_null() {
            return None;
        }
        // SAFETY: PAM_CONV is a `struct pam_conv` owned by the application.
        let conv = unsafe { &*(p as *const PamConv) };
        let f = conv.conv?;
        let text = CString::new(text).ok()?;
        let message = PamMessage {
            msg_style: style,
            msg: text.as_ptr(),
        };
        let mut list: *const PamMessage = &message;
        let mut resp: *mut PamResponse = std::ptr::null_mut();
        // SAFETY: one message, as the conversation protocol defines; the response array (if
        // any) is malloc'ed by the application and ours to free.
        let rc = unsafe { f(1, &mut list, &mut resp, conv.appdata_ptr) };
        let answer = if resp.is_null() {
            None
        } else {
            // SAFETY: an array of one response from the application.
            let r = unsafe { &mut *resp };
            let out = if r.resp.is_null() {
                None
            } else {
                // SAFETY: a NUL-terminated, malloc'ed string; wiped before it is freed.
                unsafe {
                    let s = CStr::from_ptr(r.resp);
                    let copy = Zeroizing::new(s.to_bytes().to_vec());
                    std::slice::from_raw_parts_mut(r.resp.cast::<u8>(), s.to_bytes().len())
                        .zeroize();
                    libc::free(r.resp.cast());
                    Some(copy)
                }
            };
            // SAFETY: the array itself was malloc'ed by the application.
            unsafe { libc::free(resp.cast()) };
            out
        };
        if rc != PAM_SUCCESS {
            return None;
        }
        match style {
            PAM_PROMPT_ECHO_OFF => answer,
            _ => Some(answer.unwrap_or_default()),
        }
    }

    /// Keeps a granted session's token for `pam_sm_close_session` in this handle.
    pub fn hold(&self, held: Held) {
        let data = Box::into_raw(Box::new(held));
        // SAFETY: PAM keeps the pointer and calls `drop_held` with it at pam_end (or when it
        // is replaced); the name is a static C string.
        let rc =
            unsafe { pam_set_data(self.0, SESSION_DATA.as_ptr(), data.cast(), Some(drop_held)) };
        if rc != PAM_SUCCESS {
            // SAFETY: PAM did not take it.
            drop(unsafe { Box::from_raw(data) });
        }
    }

    /// The token kept by [`Handle::hold`] in this handle, if any.
    pub fn held(&self) -> Option<(u32, Zeroizing<String>)> {
        let mut p: *const c_void = std::ptr::null();
        // SAFETY: a valid handle and an out pointer.
        let rc = unsafe { pam_get_data(self.0, SESSION_DATA.as_ptr(), &mut p) };
        if rc != PAM_SUCCESS || p.is_null() {
            return None;
        }
        // SAFETY: only `hold` stores data under this name, always a `Box<Held>`.
        let h = unsafe { &*(p as *const Held) };
        Some((h.pid, h.token.clone()))
    }
}

unsafe extern "C" fn drop_held(_pamh: *mut PamHandle, data: *mut c_void, _status: c_int) {
    if !data.is_null() {
        // Never unwind into PAM; dropping a Box<Held> does not panic, but be sure.
        let _ = std::panic::catch_unwind(|| {
            // SAFETY: `data` is the Box<Held> given to pam_set_data by `hold`.
            drop(unsafe { Box::from_raw(data.cast::<Held>()) })
        });
    }
}
