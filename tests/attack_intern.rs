//! Adversarial use of `poolgc::intern`: from many threads at once, from `Drop`s in thread teardown, and in
//! a child forked while other threads hold the table's locks (the child must be able to intern: the
//! fork handlers take the tables' locks too).
#![cfg(feature = "intern")]

use poolgc::intern::{self, intern, IStr};

#[test]
fn intern_from_thread_local_destructors() {
    struct Late;
    impl Drop for Late {
        fn drop(&mut self) {
            let s = format!("late-{:?}", std::thread::current().id());
            let a = intern(&s);
            assert_eq!(&*a, s);
            assert_eq!(intern::get(&s), Some(a));
        }
    }
    thread_local! { static L: Late = const { Late }; }
    let hs: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| L.with(|_| ())))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn same_strings_from_many_threads_are_one_entry() {
    let hs: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                (0..2000)
                    .map(|i| intern(&format!("k{}", (i * 7 + t) % 1500)))
                    .map(|s| s.as_ptr() as usize)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<Vec<usize>> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    for i in 0..1500 {
        let s: IStr = intern(&format!("k{i}"));
        assert_eq!(&*s, format!("k{i}"));
    }
    for v in &all {
        for &p in v {
            assert!(p != 0);
        }
    }
}

#[cfg(all(unix, feature = "os", not(feature = "critical-section"), not(miri)))]
mod fork {
    use poolgc::intern::intern;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::time::{Duration, Instant};

    /// Interns fresh strings (tables grow, entries are allocated under the shard locks) until told to stop.
    fn churn(stop: &AtomicBool, t: u64) {
        let mut i = 0u64;
        while !stop.load(Relaxed) {
            let _ = intern(&format!("fork-churn-{t}-{i}"));
            i += 1;
        }
    }

    #[test]
    fn children_forked_while_threads_intern_can_intern() {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for t in 0..2 {
                let stop = &stop;
                s.spawn(move || churn(stop, t));
            }
            let mut hung = None;
            for i in 0..100 {
                // SAFETY: the child only interns and exits.
                let pid = unsafe { libc::fork() };
                assert!(pid >= 0, "fork failed");
                if pid == 0 {
                    let ok = (0..64).all(|k| {
                        let s = format!("child-{k}");
                        intern(&s).as_str() == s
                    });
                    // SAFETY: ends the child without running the parent's exit handlers.
                    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
                }
                match wait_for(pid) {
                    Some(status) => {
                        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0)
                    }
                    None => {
                        hung = Some(i);
                        break;
                    }
                }
            }
            stop.store(true, Relaxed);
            assert_eq!(hung, None, "a child hung interning (killed after 10 s)");
        });
    }

    fn wait_for(pid: libc::pid_t) -> Option<libc::c_int> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut status = 0;
        loop {
            // SAFETY: polls the child just forked.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            assert!(r == 0 || r == pid, "waitpid failed");
            if r == pid {
                return Some(status);
            }
            if Instant::now() > deadline {
                // SAFETY: our own child; reaped right after.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
