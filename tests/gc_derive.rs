//! `#[derive(Trace)]` (feature `derive`): structs, tuple structs, enums, generics, `#[trace(skip)]`,
//! recursive types, and the computed `ACYCLIC`.
#![cfg(all(feature = "derive", feature = "std"))]

use poolgc::gc::{self, Gc, Trace, Weak};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

thread_local!(static DROPS: Cell<usize> = const { Cell::new(0) });

#[derive(Trace)]
struct Person {
    name: String,
    friends: RefCell<Vec<Gc<Person>>>,
    best: RefCell<Option<Gc<Person>>>,
    #[trace(skip)]
    _untraced: std::rc::Rc<u8>,
}

impl Drop for Person {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

#[derive(Trace)]
struct Plain {
    a: u32,
    b: String,
    c: Vec<(u8, Option<Box<str>>)>,
}

#[derive(Trace)]
struct Pair(Gc<Plain>, u8);

#[derive(Trace)]
enum Expr {
    Num(i64),
    Add(Box<Expr>, Box<Expr>),
    Ref { target: RefCell<Option<Gc<Expr>>> },
    Nothing,
}

#[derive(Trace)]
struct Wrapper<T> {
    inner: RefCell<Vec<T>>,
}

#[derive(Trace)]
struct Tree {
    kids: Vec<Tree>, // recursive: ACYCLIC = false without a const-evaluation cycle
    map: BTreeMap<u8, String>,
}

#[derive(Trace)]
#[trace(cyclic)]
struct MutualA {
    b: Vec<MutualB>,
}
#[derive(Trace)]
struct MutualB {
    a: Option<Box<MutualA>>,
    parent: Weak<MutualA>,
}

#[derive(Trace)]
enum Never {}

#[test]
fn acyclic_is_computed_from_the_fields() {
    const { assert!(<Plain as Trace>::ACYCLIC) };
    const { assert!(!<Person as Trace>::ACYCLIC) };
    const { assert!(!<Pair as Trace>::ACYCLIC) };
    const { assert!(!<Expr as Trace>::ACYCLIC) };
    const { assert!(<Wrapper<u8> as Trace>::ACYCLIC) };
    const { assert!(!<Wrapper<Gc<u8>> as Trace>::ACYCLIC) };
    const { assert!(!<Tree as Trace>::ACYCLIC) };
    const { assert!(!<MutualA as Trace>::ACYCLIC) };
    const { assert!(!<MutualB as Trace>::ACYCLIC) };
    const { assert!(<Never as Trace>::ACYCLIC) };
}

#[test]
fn derived_struct_cycles_are_collected() {
    gc::collect();
    let d = DROPS.with(Cell::get);
    let p = |n: &str| {
        Gc::new(Person {
            name: n.into(),
            friends: RefCell::new(Vec::new()),
            best: RefCell::new(None),
            _untraced: std::rc::Rc::new(0),
        })
    };
    let (a, b, c) = (p("a"), p("b"), p("c"));
    a.friends.borrow_mut().extend([b.clone(), c.clone()]);
    *b.best.borrow_mut() = Some(a.clone());
    *c.best.borrow_mut() = Some(c.clone());
    assert_eq!(a.name, "a");
    drop((a, b, c));
    assert_eq!(gc::collect(), 3);
    assert_eq!(DROPS.with(Cell::get), d + 3);
}

#[test]
fn derived_enum_cycles_are_collected() {
    gc::collect();
    let x = Gc::new(Expr::Ref {
        target: RefCell::new(None),
    });
    let y = Gc::new(Expr::Add(Box::new(Expr::Num(1)), Box::new(Expr::Nothing)));
    if let Expr::Ref { target } = &*x {
        *target.borrow_mut() = Some(x.clone());
    }
    let w = Gc::downgrade(&x);
    drop((x, y));
    assert_eq!(gc::collect(), 1);
    assert!(w.upgrade().is_none());
}

#[test]
fn derived_generic_and_green() {
    gc::collect();
    let plain = Gc::new(Plain {
        a: 1,
        b: "b".into(),
        c: vec![(1, Some("x".into()))],
    });
    let p2 = plain.clone();
    drop(p2);
    assert_eq!(gc::count(), 0, "a green type is never buffered");
    assert_eq!(plain.a + plain.b.len() as u32 + plain.c.len() as u32, 3);
    let pair = Gc::new(Pair(plain.clone(), 0));
    assert_eq!(pair.1, 0);
    let w: Gc<Wrapper<Gc<Pair>>> = Gc::new(Wrapper {
        inner: RefCell::new(vec![pair.clone()]),
    });
    let w2 = w.clone();
    drop(w2);
    assert_eq!(gc::collect(), 0);
    assert_eq!(Gc::strong_count(&pair), 2);
}
