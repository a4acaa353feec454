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

/// What the caller adds to each node's label (objgraph's `extra_info`): a line of its own, e.g. a name.
pub type ExtraInfo<'a> = Option<&'a dyn Fn(&GcAny) -> String>;

/// Writes `s` as DOT string content: quotes and backslashes escaped, newlines as `\n`.
fn escaped(out: &mut dyn Write, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.write_char('\\')?;
                out.write_char(c)?;
            }
            '\n' => out.write_str("\\n")?,
            _ => out.write_char(c)?,
        }
    }
    Ok(())
}

/// Writes one node: short type name, the caller's extra line, address and size; `fill` colours it.
fn node(
    out: &mut dyn Write,
    h: NonNull<Header>,
    fill: &str,
    note: &str,
    extra: ExtraInfo<'_>,
) -> fmt::Result {
    // SAFETY: callers pass allocated boxes.
    let hr = unsafe { h.as_ref() };
    let name = short_type_name((hr.vtable.type_name)());
    write!(out, "  n{:x} [label=\"", h.as_ptr() as usize)?;
    escaped(out, &name)?;
    if let Some(f) = extra {
        out.write_str("\\n")?;
        escaped(out, &f(&GcAny::new_counted(h)))?;
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
/// ([`garbage()`](super::garbage)), it draws the cycles that collection found. `extra_info`, when given,
/// adds a line of its own to each node's label (as objgraph's `extra_info`).
///
/// ```
/// use poolgc::gc::{self, Gc, GcAny};
/// use std::cell::RefCell;
///
/// let a = Gc::new(RefCell::new(Vec::<Gc<String>>::new()));
/// a.borrow_mut().push(Gc::new("x".to_string()));
/// let objs = vec![GcAny::from(&a), gc::get_referents(&a).remove(0)];
/// let mut dot = String::new();
/// gc::write_dot(&objs, None, &mut dot).unwrap();
/// assert!(dot.starts_with("digraph") && dot.contains("String") && dot.contains(" -> "));
/// ```
pub fn write_dot(objects: &[GcAny], extra_info: ExtraInfo<'_>, out: &mut dyn Write) -> fmt::Result {
    header(out, "objects")?;
    let set: Vec<NonNull<Header>> = objects.iter().map(GcAny::header_ptr).collect();
    for &h in &set {
        node(out, h, "#f4cccc", "", extra_info)?;
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
/// of such handles. `obj` itself is drawn orange. `extra_info` as for [`write_dot`]. Feature
/// `gc-introspect`.
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
/// // objgraph's `extra_info`: a line of our own in each node's label.
/// let len = |o: &gc::GcAny| match o.downcast::<String>() {
///     Some(s) => format!("{} bytes", s.len()),
///     None => String::new(),
/// };
/// gc::write_backrefs_dot(&leaf, 5, Some(&len), &mut dot).unwrap();
/// assert!(dot.contains("4 bytes"));
/// assert_eq!(dot.matches(" -> ").count(), 2); // top -> mid -> leaf
/// assert!(dot.contains("1 outside")); // `top` (and `leaf`) are held by a local
/// # drop(top);
/// ```
#[cfg(feature = "gc-introspect")]
pub fn write_backrefs_dot(
    obj: &impl super::GcObject,
    max_depth: usize,
    extra_info: ExtraInfo<'_>,
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
        node(out, h, fill, &note, extra_info)?;
    }
    for &(from, to) in &drawn {
        edge(out, from, to)?;
    }
    writeln!(out, "}}")
}
