//! poolgc and its peers behind [`Collector`]: the same node (an id and a `RefCell<Vec<_>>` of edges, with
//! a drop counter) under each library's pointer and tracing trait.

use super::{count_drop, Collector};
use std::cell::RefCell;

/// Defines a node type for one library, and `Collector` for a marker type, from its pointer type and
/// its `new` and `collect` functions; the `Trace` impls follow separately (each library's trait differs).
macro_rules! collector {
    ($marker:ident, $node:ident, $ptr:ident, $name:expr, $cycles:expr, $auto:expr, $collect:expr) => {
        /// A graph node under this library's pointer.
        pub struct $node {
            id: u32,
            edges: RefCell<Vec<$ptr<$node>>>,
        }
        impl Drop for $node {
            fn drop(&mut self) {
                count_drop();
            }
        }
        #[doc = concat!("The `", $name, "` column.")]
        pub struct $marker;
        impl Collector for $marker {
            const NAME: &'static str = $name;
            const CYCLES: bool = $cycles;
            const AUTOMATIC: bool = $auto;
            type P = $ptr<$node>;
            #[inline]
            fn node(id: u32) -> Self::P {
                $ptr::new($node {
                    id,
                    edges: RefCell::new(Vec::new()),
                })
            }
            #[inline]
            fn id(p: &Self::P) -> u32 {
                p.id
            }
            #[inline]
            fn push(from: &Self::P, to: Self::P) {
                from.edges.borrow_mut().push(to);
            }
            #[inline]
            fn take(from: &Self::P, i: usize) -> Option<Self::P> {
                let mut e = from.edges.borrow_mut();
                (i < e.len()).then(|| e.swap_remove(i))
            }
            #[inline]
            fn degree(p: &Self::P) -> usize {
                p.edges.borrow().len()
            }
            #[inline]
            fn edge(p: &Self::P, i: usize) -> Option<Self::P> {
                p.edges.borrow().get(i).cloned()
            }
            #[inline]
            fn each(p: &Self::P, f: impl FnMut(&Self::P)) {
                p.edges.borrow().iter().for_each(f);
            }
            fn collect() {
                $collect
            }
        }
    };
}

use poolgc::gc::Gc as PGc;
collector!(Poolgc, PoolgcNode, PGc, "poolgc", true, true, {
    poolgc::gc::collect();
});
// SAFETY: visits `edges`, the only field that can own a `Gc`, once.
unsafe impl poolgc::gc::Trace for PoolgcNode {
    fn trace(&self, t: &mut poolgc::gc::Tracer) {
        self.edges.trace(t);
    }
}

use std::rc::Rc;
collector!(RcPeer, RcNode, Rc, "Rc", false, false, ());

use bacon_rajan_cc::Cc as BCc;
collector!(
    BaconRajan,
    BaconNode,
    BCc,
    "bacon_rajan_cc",
    true,
    false,
    bacon_rajan_cc::collect_cycles()
);
impl bacon_rajan_cc::Trace for BaconNode {
    fn trace(&self, t: &mut bacon_rajan_cc::Tracer) {
        self.edges.trace(t);
    }
}

use rust_cc::Cc as RCc;
collector!(
    RustCc,
    RustCcNode,
    RCc,
    "rust-cc",
    true,
    true,
    rust_cc::collect_cycles()
);
// SAFETY: traces `edges`, the only field holding `Cc`s, always the same way.
unsafe impl rust_cc::Trace for RustCcNode {
    fn trace(&self, ctx: &mut rust_cc::Context<'_>) {
        self.edges.trace(ctx);
    }
}
impl rust_cc::Finalize for RustCcNode {}

use dumpster::unsync::Gc as DGc;
collector!(
    Dumpster,
    DumpsterNode,
    DGc,
    "dumpster",
    true,
    true,
    dumpster::unsync::collect()
);
// SAFETY: delegates to `edges`, the only field holding `Gc`s.
unsafe impl<V: dumpster::Visitor> dumpster::TraceWith<V> for DumpsterNode {
    fn accept(&self, v: &mut V) -> Result<(), ()> {
        self.edges.accept(v)
    }
}

use gcmodule::Cc as GCc;
collector!(GcModule, GcModuleNode, GCc, "gcmodule", true, false, {
    gcmodule::collect_thread_cycles();
});
impl gcmodule::Trace for GcModuleNode {
    fn trace(&self, t: &mut gcmodule::Tracer) {
        self.edges.trace(t);
    }
}
