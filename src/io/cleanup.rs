//! Files to remove if the process is stopped by a signal: SIGINT, SIGTERM and SIGHUP remove this run's temporary
//! (and not yet committed) files, then end the process the conventional way (by the same signal, so a shell sees
//! exit status 128 + N).
//!
//! [`AtomicFile`](super::AtomicFile) and [`FileSet`](super::FileSet) register what they create here; a program
//! opts in to the handlers with [`remove_on_signal`] (the `rdbkit` binary does). Without the handlers, the
//! registry is not kept at all.
//!
//! The handler may run on any thread at any moment, so it only walks a push-only list of nodes that are never
//! freed and calls `unlink(2)`, which is async-signal-safe. A finished file marks its node dead; nodes are leaked
//! (a few dozen bytes per file, once per output of a command-line run).

use std::path::Path;

#[cfg(unix)]
mod imp {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

    pub(super) struct Node {
        path: CString,
        live: AtomicBool,
        next: AtomicPtr<Node>,
    }

    static HEAD: AtomicPtr<Node> = AtomicPtr::new(std::ptr::null_mut());
    impl std::fmt::Debug for Node {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Node").field("path", &self.path).finish_non_exhaustive()
        }
    }

    pub(super) static INSTALLED: AtomicBool = AtomicBool::new(false);

    pub(super) fn register(path: &Path) -> Option<&'static Node> {
        if !INSTALLED.load(Ordering::Acquire) {
            return None;
        }
        let path = CString::new(path.as_os_str().as_bytes()).ok()?;
        let node: &'static Node =
            Box::leak(Box::new(Node { path, live: AtomicBool::new(true), next: AtomicPtr::new(std::ptr::null_mut()) }));
        let ptr = node as *const Node as *mut Node;
        let mut head = HEAD.load(Ordering::Acquire);
        loop {
            node.next.store(head, Ordering::Release);
            match HEAD.compare_exchange_weak(head, ptr, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(node),
                Err(h) => head = h,
            }
        }
    }

    pub(super) fn release(node: &'static Node) {
        node.live.store(false, Ordering::Release);
    }

    extern "C" fn on_signal(sig: libc::c_int) {
        // Newest first: files before the directories or lock files registered earlier.
        let mut p = HEAD.load(Ordering::Acquire);
        while !p.is_null() {
            // SAFETY: nodes are leaked `Box`es, never freed or mutated but through atomics.
            let node = unsafe { &*p };
            if node.live.load(Ordering::Acquire) {
                // SAFETY: a valid NUL-terminated path; unlink is async-signal-safe.
                unsafe { libc::unlink(node.path.as_ptr()) };
            }
            p = node.next.load(Ordering::Acquire);
        }
        // SAFETY: both are async-signal-safe; the signal stays blocked until this handler returns, then the
        // default action ends the process with it.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }

    pub(super) fn install() {
        if INSTALLED.swap(true, Ordering::AcqRel) {
            return;
        }
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction is valid; the handler only does async-signal-safe work.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN {
                    // Ignored on purpose by whoever started us (nohup): keep it so.
                    continue;
                }
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                libc::sigemptyset(&mut sa.sa_mask);
                sa.sa_flags = libc::SA_RESTART;
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    }
}

/// Installs handlers for SIGINT, SIGTERM and SIGHUP (unless they are ignored, as under `nohup`) that remove every
/// file registered and not yet released, then end the process by the same signal. Call it once, early, from a
/// program's `main`; it does nothing on platforms without signals.
pub fn remove_on_signal() {
    #[cfg(unix)]
    imp::install();
}

/// A file removed if a signal stops the process before this value is dropped (or [`released`](Self::release)).
#[derive(Debug, Default)]
pub struct Registration {
    #[cfg(unix)]
    node: Option<&'static imp::Node>,
}

impl Registration {
    /// Registers `path` for removal on a signal (a no-op until [`remove_on_signal`] was called).
    pub fn new(path: &Path) -> Registration {
        #[cfg(unix)]
        return Registration { node: imp::register(path) };
        #[cfg(not(unix))]
        {
            let _ = path;
            Registration {}
        }
    }

    /// The file no longer needs removing (it was published, or removed).
    pub fn release(self) {}
}

impl Drop for Registration {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(n) = self.node.take() {
            imp::release(n);
        }
    }
}
