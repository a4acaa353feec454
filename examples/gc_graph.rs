//! A graph of `Gc` nodes with `#[derive(Trace)]` (feature `derive`): reference counting frees what is
//! unreachable at once, and the cycle collector frees the cycles counting cannot.
//!
//! ```sh
//! cargo run --release --example gc_graph --features derive
//! ```

use poolgc::gc::{self, Gc, Trace, Weak};
use std::cell::RefCell;

/// A node: a name, edges to other nodes, and a weak link to its parent (weak links keep nothing alive).
#[derive(Trace)]
struct Node {
    name: String,
    edges: RefCell<Vec<Gc<Node>>>,
    parent: RefCell<Weak<Node>>,
}

impl Node {
    fn new(name: &str) -> Gc<Node> {
        Gc::new(Node {
            name: name.to_owned(),
            edges: RefCell::new(Vec::new()),
            parent: RefCell::new(Weak::new()),
        })
    }

    fn link(from: &Gc<Node>, to: &Gc<Node>) {
        from.edges.borrow_mut().push(to.clone());
        *to.parent.borrow_mut() = Gc::downgrade(from);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        println!("  dropping {}", self.name);
    }
}

fn main() {
    // A tree: no cycle, so counting alone frees it when the root goes.
    println!("a tree, dropped:");
    let root = Node::new("root");
    for name in ["left", "right"] {
        Node::link(&root, &Node::new(name));
    }
    let left = root.edges.borrow()[0].clone();
    let parent = left.parent.borrow().upgrade().expect("root is alive");
    println!("  left's parent is {}", parent.name);
    drop((parent, left, root));

    // A ring a -> b -> c -> a: after the handles go, each node still has a count of one.
    println!("a ring of three, dropped:");
    let a = Node::new("a");
    let b = Node::new("b");
    let c = Node::new("c");
    Node::link(&a, &b);
    Node::link(&b, &c);
    Node::link(&c, &a);
    let watch = Gc::downgrade(&a);
    drop((a, b, c));
    println!(
        "  still alive after the drops: {}",
        watch.upgrade().is_some()
    );

    // The collector finds it (it also runs by itself once enough possible roots are buffered).
    let found = gc::collect();
    println!("collect() found {found} garbage objects");
    assert_eq!(found, 3);
    assert!(watch.upgrade().is_none());

    let s = gc::stats();
    println!(
        "collections: {}, collected: {}, live: {}",
        s.collections, s.collected, s.live
    );
}
