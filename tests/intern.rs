//! Interned strings: one object per distinct string, from any thread.
#![cfg(feature = "intern")]

use poolgc::intern::{self, intern, IStr};
use std::collections::HashSet;

#[test]
fn same_contents_same_object() {
    let a = intern("hello");
    let owned = String::from("hel") + "lo";
    let b = intern(&owned);
    assert_eq!(a, b);
    assert_eq!(a.as_ptr(), b.as_ptr());
    assert_ne!(a.as_ptr(), owned.as_ptr());
    assert_ne!(intern("hello"), intern("hellO"));
    assert_eq!(intern::get("hello"), Some(a));
    assert_eq!(intern::get("never interned, this one"), None);
}

#[test]
fn str_api() {
    let s = intern("naïve ☃");
    assert_eq!(s.as_str(), "naïve ☃");
    assert_eq!(s.len(), "naïve ☃".len()); // Deref<Target = str>
    assert_eq!(format!("{s}"), "naïve ☃");
    assert_eq!(format!("{s:?}"), "\"naïve ☃\"");
    assert!(s == "naïve ☃");
    let e = intern("");
    assert_eq!(e.as_str(), "");
    assert_eq!(e, intern(""));
    let long = "x".repeat(10_000);
    assert_eq!(intern(&long).as_str(), long);
}

#[test]
fn ordering_is_by_content() {
    let mut v: Vec<IStr> = ["pear", "apple", "fig", "apple", "banana"]
        .iter()
        .map(|s| intern(s))
        .collect();
    v.sort();
    let got: Vec<&str> = v.iter().map(|s| s.as_str()).collect();
    assert_eq!(got, ["apple", "apple", "banana", "fig", "pear"]);
}

#[test]
fn hash_set_by_identity() {
    let set: HashSet<IStr> = ["a", "b", "a", "c", "b"]
        .iter()
        .map(|s| intern(s))
        .collect();
    assert_eq!(set.len(), 3);
    assert!(set.contains(&intern("c")));
}

#[test]
fn many_strings_grow_the_table() {
    let n = if cfg!(miri) { 300 } else { 20_000 };
    let before = intern::count();
    let first: Vec<IStr> = (0..n).map(|i| intern(&format!("grow-{i}"))).collect();
    assert!(intern::count() >= before + n);
    for (i, s) in first.iter().enumerate() {
        assert_eq!(s.as_str(), format!("grow-{i}"));
        assert_eq!(*s, intern(&format!("grow-{i}")));
    }
}

#[test]
fn every_thread_gets_the_same_pointer() {
    let n = if cfg!(miri) { 50 } else { 2_000 };
    let threads = 4;
    let results: Vec<Vec<usize>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                sc.spawn(move || {
                    // Each thread interns the same strings from a different starting point, odd
                    // threads backwards.
                    let mut out = vec![0usize; n];
                    for k in 0..n {
                        let k = if t % 2 == 1 { n - 1 - k } else { k };
                        let i = (k + t * n / threads) % n;
                        out[i] = intern(&format!("shared-{i}")).as_ptr() as usize;
                    }
                    out
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results[1..] {
        assert!(r == &results[0], "two threads got different objects");
    }
    let distinct: HashSet<usize> = results[0].iter().copied().collect();
    assert_eq!(distinct.len(), n);
}

#[test]
fn istr_is_send_sync_copy() {
    fn check<T: Send + Sync + Copy + 'static>() {}
    check::<IStr>();
    let s: &'static str = intern("static").as_str();
    assert_eq!(s, "static");
}
