//! Compiles the BPF programs with clang: the option path's sock_ops program
//! (`bpf/eno_options.bpf.c`) and the SYN filters (`bpf/syn_filters.bpf.c`).
//!
//! Without clang the crate still builds: the objects are left empty, `cfg(bpf_object)` is unset
//! and `bpf::EnoOptions::load` says how to get the BPF path (install clang, rebuild).

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// (source, object file name in OUT_DIR)
const SOURCES: &[(&str, &str)] = &[
    ("bpf/eno_options.bpf.c", "eno_options.bpf.o"),
    ("bpf/syn_filters.bpf.c", "syn_filters.bpf.o"),
];

fn main() {
    for (source, _) in SOURCES {
        println!("cargo:rerun-if-changed={source}");
    }
    println!("cargo:rerun-if-env-changed=CLANG");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    // Built again once clang appears (a path that does not exist always counts as changed),
    // or when it changes.
    let found = env::var_os("PATH")
        .map(|p| {
            env::split_paths(&p)
                .map(|d| d.join(&clang))
                .find(|f| f.is_file())
        })
        .unwrap_or_default();
    let watched = found.unwrap_or_else(|| PathBuf::from("/usr/bin").join(&clang));
    println!("cargo:rerun-if-changed={}", watched.display());
    // The kernel headers' <asm/types.h> lives in the multiarch directory (Debian's layout).
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let mut built = true;
    for (source, object) in SOURCES {
        let out = out_dir.join(object);
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .arg("-I")
            .arg(&multiarch)
            .arg("-c")
            .arg(source)
            .arg("-o")
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => continue,
            Ok(s) => println!(
                "cargo:warning={clang} failed on {source} ({s}): the BPF option path is left out"
            ),
            Err(e) => println!("cargo:warning={clang} not found ({e}): the BPF option path is left out; install clang and libbpf-dev to build it"),
        }
        built = false;
        break;
    }
    if built {
        println!("cargo:rustc-cfg=bpf_object");
    } else {
        for (_, object) in SOURCES {
            std::fs::write(out_dir.join(object), b"").expect("write the empty object");
        }
    }
}
