//! Generates `breakglass.h` with cbindgen into OUT_DIR; `tests/header.rs` fails when the
//! committed `include/breakglass.h` differs. Writing into the source tree happens only when
//! asked (`BREAKGLASS_UPDATE_HEADER=1`, what `make header` sets), so packaging stays clean.
//! Also links the cdylib with `-z nodelete`: the library's threads and fork handlers must never
//! outlive its code, so `dlclose()` leaves it mapped. Its soname is `libbreakglass.so.0`, so
//! the build tree gets a `libbreakglass.so.0` link beside the library: a program linked against
//! `target/<profile>` finds what its `NEEDED` entry names, straight after a plain `cargo build`.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("breakglass.h");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap();
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .with_after_include(format!("\n/** The crate version this header was generated from. */\n#define BREAKGLASS_VERSION \"{version}\""))
        .generate()
        .expect("cbindgen could not generate the header");
    bindings.write_to_file(&out);
    if std::env::var_os("BREAKGLASS_UPDATE_HEADER").is_some_and(|v| v == "1") {
        bindings.write_to_file(crate_dir.join("include/breakglass.h"));
    }
    link_soname_in_build_tree();
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libbreakglass.so.0");
    println!("cargo:rerun-if-env-changed=BREAKGLASS_UPDATE_HEADER");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");
}

/// `target/<profile>/libbreakglass.so.0 -> libbreakglass.so`. OUT_DIR is
/// `target/<profile>/build/breakglass-<hash>/out`; the link may dangle until the library is
/// linked a moment later.
fn link_soname_in_build_tree() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let Some(profile_dir) = out.ancestors().nth(3) else {
        return;
    };
    let link = profile_dir.join("libbreakglass.so.0");
    if std::fs::symlink_metadata(&link).is_err() {
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink("libbreakglass.so", &link);
    }
}
