//! The few Linux-PAM declarations the module uses (`<security/pam_modules.h>`,
//! `<security/_pam_types.h>`): written out here rather than taken from a crate, since the
//! maintained PAM module crate (`pamsm`) is GPL-3.0 and this project is Apache-2.0.
//!
//! Owns only declarations and constants; it must never hold logic.

use std::ffi::{c_char, c_int, c_void};

/// `pam_handle_t`, opaque.
#[repr(C)]
pub struct PamHandle {
    _opaque: [u8; 0],
}

/// `struct pam_message`.
#[repr(C)]
pub struct PamMessage {
    pub msg_style: c_int,
    pub msg: *const c_char,
}

/// `struct pam_response`: `resp` is malloc'ed by the application; the module frees it.
#[repr(C)]
pub struct PamResponse {
    pub resp: *mut c_char,
    pub resp_retcode: c_int,
}

/// The conversation function's type.
pub type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

/// `struct pam_conv`.
#[repr(C)]
pub struct PamConv {
    pub conv: Option<ConvFn>,
    pub appdata_ptr: *mut c_void,
}

/// A `pam_set_data` cleanup function.
pub type CleanupFn = unsafe extern "C" fn(pamh: *mut PamHandle, data: *mut c_void, status: c_int);

pub const PAM_SUCCESS: c_int = 0;
pub const PAM_AUTH_ERR: c_int = 7;
pub const PAM_AUTHINFO_UNAVAIL: c_int = 9;
pub const PAM_IGNORE: c_int = 25;

pub const PAM_RHOST: c_int = 4;
pub const PAM_CONV: c_int = 5;

pub const PAM_PROMPT_ECHO_OFF: c_int = 1;
pub const PAM_ERROR_MSG: c_int = 3;
pub const PAM_TEXT_INFO: c_int = 4;

/// `flags & PAM_SILENT`: no informational messages to the user.
pub const PAM_SILENT: c_int = 0x8000;

#[link(name = "pam")]
extern "C" {
    pub fn pam_get_user(
        pamh: *mut PamHandle,
        user: *mut *const c_char,
        prompt: *const c_char,
    ) -> c_int;
    pub fn pam_get_item(
        pamh: *const PamHandle,
        item_type: c_int,
        item: *mut *const c_void,
    ) -> c_int;
    pub fn pam_set_data(
        pamh: *mut PamHandle,
        name: *const c_char,
        data: *mut c_void,
        cleanup: Option<CleanupFn>,
    ) -> c_int;
    pub fn pam_get_data(
        pamh: *const PamHandle,
        name: *const c_char,
        data: *mut *const c_void,
    ) -> c_int;
}
