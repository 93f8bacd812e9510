//! Finds libwirehub and links it.
//!
//! Order: `WIREHUB_BUILD_DIR` (an explicit request wins), then
//! `pkg-config wirehub` (an installed library), then the repository's own
//! CMake build in `../../build`. The static archive is preferred so that the
//! examples and tests run without LD_LIBRARY_PATH.
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn link_static(dir: &Path) {
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=wirehub");
    for lib in ["ssl", "crypto", "z", "stdc++", "pthread"] {
        println!("cargo:rustc-link-lib=dylib={}", lib);
    }
    println!("cargo:rerun-if-changed={}", dir.join("libwirehub.a").display());
}

fn try_pkg_config() -> bool {
    let out = match Command::new("pkg-config")
        .args(["--libs", "--static", "wirehub"])
        .output()
    {
        Ok(o) if o.status.success() => o,
        _ => return false,
    };
    let flags = String::from_utf8_lossy(&out.stdout).to_string();
    for f in flags.split_whitespace() {
        if let Some(p) = f.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={}", p);
            // A shared libwirehub found this way must also be found at run time.
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", p);
        } else if let Some(l) = f.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={}", l);
        }
    }
    println!("cargo:rustc-link-lib=dylib=stdc++");
    true
}

fn main() {
    println!("cargo:rerun-if-env-changed=WIREHUB_BUILD_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-changed=build.rs");

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    if let Ok(dir) = env::var("WIREHUB_BUILD_DIR") {
        let dir = PathBuf::from(dir);
        let dir = if dir.is_absolute() {
            dir
        } else {
            manifest.join(dir)
        };
        if dir.join("libwirehub.a").is_file() {
            link_static(&dir);
            return;
        }
        panic!(
            "wirehub: WIREHUB_BUILD_DIR={} has no libwirehub.a; run ./scripts/build.sh \
             (with the same WIREHUB_BUILD_DIR) from the repository root first",
            dir.display()
        );
    }
    if try_pkg_config() {
        return;
    }
    let dir = manifest.join("../../build");
    if dir.join("libwirehub.a").is_file() {
        link_static(&dir.canonicalize().unwrap_or(dir));
        return;
    }
    println!("cargo:rerun-if-changed={}", dir.join("libwirehub.a").display());
    panic!(
        "wirehub: libwirehub was not found (no WIREHUB_BUILD_DIR, no `pkg-config wirehub`, \
         no {}/libwirehub.a); run ./scripts/build.sh from the repository root first",
        dir.display()
    );
}
