//! Graphviz pictures of the object graph: the objects a set holds among themselves (the cycles a
//! collection found, with `DEBUG_SAVEALL`), and the chain of referrers that keeps an object alive
//! (objgraph's `show_backrefs`, with feature `gc-introspect`). Render with `dot -Tsvg graph.dot`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::ptr::NonNull;

use super::gcbox::Header;
use super::introspect::{referents_of, size_of_box, GcAny};

/// A type name without its module paths: `alloc::vec::Vec<tour::Node>` reads `Vec<Node>`.
pub fn short_type_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    // Where the current path (a run of `a::b::C`) started in `out`.
    let mut seg_start = 0;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(seg_start);
        } else {
            out.push(c);
            if !(c.is_alphanumeric() || c == '_') {
                seg_start = out.len();
            }
        }
    }
    out
}

/// Writes one node: short type name, address and size; `fill` colours it.
fn node(out: &mut dyn Write, h: NonNull<Header>, fill: &str, note: &str) -> fmt::Result {
    // SAFETY: callers pass allocated boxes.
    let hr = unsafe { h.as_ref() };
    let name = short_type_name((hr.vtable.type_name)());
    write!(out, "  n{:x} [label=\"", h.as_ptr() as usize)?;
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.write_char('\\')?;
        }
        out.write_char(c)?;
    }
    write!(
        out,
        "\\n{:#x}, {} B{note}\", fillcolor=\"{fill}\"];",
        h.as_ptr() as usize,
        size_of_box(h)
    )?;
    writeln!(out)
}

fn header(out: &mut dyn Write, title: &str) -> fmt::Result {
    writeln!(out, "digraph \"{title}\" {{")?;
    writeln!(out, "  rankdir=LR;")?;
    writeln!(
        out,
        "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];"
    )?;
    writeln!(out, "  edge [color=\"#555555\"];")
}

/// Writes a Graphviz DOT graph of `objects` and the references among them (each object's referents
/// that are in the set). Given the garbage a collection kept with [`DEBUG_SAVEALL`](super::DEBUG_SAVEALL)
/// ([`garbage()`](super::garbage)), it draws the cycles that collection found.
///
/// ```
/// use poolgc::gc::{self, Gc, GcAny};
/// use std::cell::RefCell;
///
/// let a = Gc::new(RefCell::new(Vec::<Gc<String>>::new()));
/// a.borrow_mut().push(Gc::new("x".to_string()));
/// let objs = vec![GcAny::from(&a), gc::get_referents(&a).remove(0)];
/// let mut dot = String::new();
/// gc::write_dot(&objs, &mut dot).unwrap();
/// assert!(dot.starts_with("digraph") && dot.contains("String") && dot.contains(" -> "));
/// ```
pub fn write_dot(objects: &[GcAny], out: &mut dyn Write) -> fmt::Result {
    header(out, "objects")?;
    let set: Vec<NonNull<Header>> = objects.iter().map(GcAny::header_ptr).collect();
    for &h in &set {
        node(out, h, "#f4cccc", "")?;
    }
    for &h in &set {
        for to in referents_of(h) {
            if set.contains(&to) {
                edge(out, h, to)?;
            }
        }
    }
    writeln!(out, "}}")
}

fn edge(out: &mut dyn Write, from: NonNull<Header>, to: NonNull<Header>) -> fmt::Result {
    writeln!(
        out,
        "  n{:x} -> n{:x};",
        from.as_ptr() as usize,
        to.as_ptr() as usize
    )
}

/// Writes a Graphviz DOT graph of what keeps `obj` alive (objgraph's `show_backrefs`): its referrers,
/// theirs, and so on up to `max_depth` steps back, with the references between them. An object held
/// by more handles than the drawn references explain is held from outside the object graph (a local
/// variable, a static, a thread-local: what CPython calls a root): it is drawn green with the number
/// of such handles. `obj` itself is drawn orange. Feature `gc-introspect`.
///
/// ```
/// use poolgc::gc::{self, Gc};
/// use std::cell::RefCell;
///
/// let leaf = Gc::new(String::from("leaf"));
/// let mid = Gc::new(RefCell::new(vec![leaf.clone()]));
/// let top = Gc::new(RefCell::new(vec![mid.clone()]));
/// drop(mid);
/// let mut dot = String::new();
/// gc::write_backrefs_dot(&leaf, 5, &mut dot).unwrap();
/// assert_eq!(dot.matches(" -> ").count(), 2); // top -> mid -> leaf
/// assert!(dot.contains("1 outside")); // `top` (and `leaf`) are held by a local
/// # drop(top);
/// ```
#[cfg(feature = "gc-introspect")]
pub fn write_backrefs_dot(
    obj: &impl super::GcObject,
    max_depth: usize,
    out: &mut dyn Write,
) -> fmt::Result {
    let target = super::introspect::header_of(obj);
    let edges = super::census::all_edges();
    let mut nodes = alloc::vec![target];
    let mut drawn: Vec<(NonNull<Header>, NonNull<Header>)> = Vec::new();
    let mut frontier = 0;
    for _ in 0..max_depth {
        let end = nodes.len();
        for i in frontier..end {
            let to = nodes[i];
            for &(from, t) in &edges {
                if t == to && !drawn.contains(&(from, t)) {
                    drawn.push((from, t));
                    if !nodes.contains(&from) {
                        nodes.push(from);
                    }
                }
            }
        }
        if nodes.len() == end {
            break;
        }
        frontier = end;
    }
    header(out, "backrefs")?;
    let mut note = String::new();
    for &h in &nodes {
        // SAFETY: `h` is `obj` (held by the caller) or a tracked box on this thread's list.
        let hr = unsafe { h.as_ref() };
        let strong = hr.strong.get();
        let inside = edges.iter().filter(|&&(_, t)| t == h).count();
        note.clear();
        let outside =
            if strong == super::gcbox::IMMORTAL_STRONG || hr.has(super::gcbox::Flags::DROPPED) {
                0
            } else {
                // The caller's handle to `obj` counts as outside, as objgraph counts its own argument.
                (strong as usize).saturating_sub(inside)
            };
        if outside > 0 {
            let _ = write!(note, "\\n{outside} outside");
        }
        let fill = if h == target {
            "#f9cb9c"
        } else if outside > 0 {
            "#b6d7a8"
        } else {
            "#dddddd"
        };
        node(out, h, fill, &note)?;
    }
    for &(from, to) in &drawn {
        edge(out, from, to)?;
    }
    writeln!(out, "}}")
}
