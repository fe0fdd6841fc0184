//! `node_uname_info{sysname,release,version,machine,nodename,domainname} 1`
//! from `uname(2)`; node_exporter dashboards list hosts through it.
//!
//! Layer 5.

use super::{CollectError, Emitter};

fn field(raw: &[libc::c_char]) -> String {
    // The kernel NUL-terminates every field; be safe if it did not.
    let bytes: Vec<u8> = raw.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(crate) fn collect(e: &mut Emitter<'_>) -> Result<(), CollectError> {
    // SAFETY: utsname is plain old data; uname fills it or fails.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(CollectError::Io {
            path: "uname(2)".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    let (sysname, release, version, machine, nodename, domainname) = (
        field(&u.sysname),
        field(&u.release),
        field(&u.version),
        field(&u.machine),
        field(&u.nodename),
        field(&u.domainname),
    );
    e.emit(
        "node_uname_info",
        &[
            ("domainname", &domainname),
            ("machine", &machine),
            ("nodename", &nodename),
            ("release", &release),
            ("sysname", &sysname),
            ("version", &version),
        ],
        1.0,
    );
    Ok(())
}
