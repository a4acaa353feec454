//! Snapshots: live traces resolved to file and line, grouped, compared and filtered as Python's
//! `tracemalloc.Snapshot` does. Everything here runs off the allocation path and may allocate.

use std::collections::HashMap;
use std::fmt;
use std::string::{String, ToString};
use std::vec::Vec;

use super::table::{Entry, Stack};
use crate::size_class::block_size;

/// One frame of an allocation's stack.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    /// The source file, as the debug info names it.
    pub file: String,
    /// The line in it.
    pub line: u32,
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One live traced block.
#[derive(Clone, Debug)]
pub struct Trace {
    /// Requested size in bytes.
    pub size: usize,
    /// The allocation's stack, innermost first, without the allocator's and the standard library's
    /// frames; at most the traceback limit given to `start`. Empty when nothing resolved.
    pub frames: Vec<Frame>,
    /// The tag set by [`with_tag`](super::with_tag) when it was allocated.
    pub tag: Option<&'static str>,
    /// The pool class that served it, `None` for the large path.
    pub class: Option<usize>,
}

/// What statistics are grouped by (Python's `key_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// The innermost frame outside the allocator and the standard library (`'lineno'`).
    Lineno,
    /// The whole kept stack (`'traceback'`).
    Traceback,
    /// The pool class (block size), or the large path.
    SizeClass,
    /// The caller-supplied tag.
    Tag,
}

/// A group's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// Frames, innermost first (one for [`GroupBy::Lineno`]).
    Site(Vec<Frame>),
    /// A pool class, `None` for the large path.
    SizeClass(Option<usize>),
    /// A tag, `None` for untagged blocks.
    Tag(Option<&'static str>),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Site(frames) if frames.is_empty() => f.write_str("<unknown>"),
            Key::Site(frames) => {
                for (i, fr) in frames.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" <- ")?;
                    }
                    write!(f, "{fr}")?;
                }
                Ok(())
            }
            Key::SizeClass(Some(c)) => write!(f, "class {c} ({} B blocks)", block_size(*c)),
            Key::SizeClass(None) => f.write_str("large"),
            Key::Tag(Some(t)) => f.write_str(t),
            Key::Tag(None) => f.write_str("<untagged>"),
        }
    }
}

/// The traced blocks of one group (Python's `Statistic`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statistic {
    /// The group.
    pub key: Key,
    /// Bytes of its live blocks.
    pub size: usize,
    /// Its live blocks.
    pub count: usize,
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: size={}, count={}",
            self.key,
            Bytes(self.size as f64),
            self.count
        )?;
        if self.count > 0 {
            write!(
                f,
                ", average={}",
                Bytes(self.size as f64 / self.count as f64)
            )?;
        }
        Ok(())
    }
}

/// A group's growth between two snapshots (Python's `StatisticDiff`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatisticDiff {
    /// The group.
    pub key: Key,
    /// Bytes now.
    pub size: usize,
    /// Bytes now minus bytes in the old snapshot.
    pub size_diff: isize,
    /// Blocks now.
    pub count: usize,
    /// Blocks now minus blocks in the old snapshot.
    pub count_diff: isize,
}

impl fmt::Display for StatisticDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.size_diff < 0 { "-" } else { "+" };
        write!(
            f,
            "{}: size={} ({sign}{}), count={} ({:+})",
            self.key,
            Bytes(self.size as f64),
            Bytes(self.size_diff.unsigned_abs() as f64),
            self.count,
            self.count_diff
        )
    }
}

/// Bytes, as Python's `_format_size` writes them.
struct Bytes(f64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = self.0;
        for unit in ["B", "KiB", "MiB", "GiB"] {
            if v < 10.0 * 1024.0 || unit == "GiB" {
                return if unit == "B" {
                    write!(f, "{} {unit}", v.round())
                } else {
                    write!(f, "{v:.1} {unit}")
                };
            }
            v /= 1024.0;
        }
        Ok(())
    }
}

/// Keeps or drops traces by the file of their innermost kept frame (Python's `tracemalloc.Filter`
/// with `all_frames=False`). The pattern is a glob: `*` matches any run of characters, `?` one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Keep matching traces (`true`) or drop them (`false`).
    pub inclusive: bool,
    /// The file name pattern.
    pub pattern: String,
}

impl Filter {
    /// Keeps only traces whose file matches `pattern` (with other include filters: any of them).
    pub fn include(pattern: &str) -> Self {
        Filter {
            inclusive: true,
            pattern: pattern.into(),
        }
    }

    /// Drops traces whose file matches `pattern`.
    pub fn exclude(pattern: &str) -> Self {
        Filter {
            inclusive: false,
            pattern: pattern.into(),
        }
    }

    fn matches(&self, t: &Trace) -> bool {
        let file = t.frames.first().map_or("<unknown>", |f| f.file.as_str());
        glob(self.pattern.as_bytes(), file.as_bytes())
    }
}

/// `*` and `?` glob matching.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The live traces at one moment (Python's `tracemalloc.Snapshot`).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    traces: Vec<Trace>,
}

impl Snapshot {
    /// Every live traced block.
    pub fn traces(&self) -> &[Trace] {
        &self.traces
    }

    /// The traces the filters keep: those matching any include filter (if there is one) and no
    /// exclude filter.
    ///
    /// ```
    /// use poolgc::trace::{Filter, Snapshot};
    /// let s = Snapshot::default().filter_traces(&[Filter::exclude("*/rustc/*")]);
    /// assert!(s.traces().is_empty());
    /// ```
    pub fn filter_traces(&self, filters: &[Filter]) -> Snapshot {
        let any_include = filters.iter().any(|f| f.inclusive);
        let traces = self
            .traces
            .iter()
            .filter(|t| {
                (!any_include || filters.iter().any(|f| f.inclusive && f.matches(t)))
                    && !filters.iter().any(|f| !f.inclusive && f.matches(t))
            })
            .cloned()
            .collect();
        Snapshot { traces }
    }

    fn key(t: &Trace, by: GroupBy) -> Key {
        match by {
            GroupBy::Lineno => Key::Site(t.frames.iter().take(1).cloned().collect()),
            GroupBy::Traceback => Key::Site(t.frames.clone()),
            GroupBy::SizeClass => Key::SizeClass(t.class),
            GroupBy::Tag => Key::Tag(t.tag),
        }
    }

    fn groups(&self, by: GroupBy) -> HashMap<Key, (usize, usize)> {
        let mut m: HashMap<Key, (usize, usize)> = HashMap::new();
        for t in &self.traces {
            let g = m.entry(Self::key(t, by)).or_default();
            g.0 += t.size;
            g.1 += 1;
        }
        m
    }

    /// The traced memory per group, biggest first (Python's `Snapshot.statistics`).
    pub fn statistics(&self, by: GroupBy) -> Vec<Statistic> {
        let mut v: Vec<Statistic> = self
            .groups(by)
            .into_iter()
            .map(|(key, (size, count))| Statistic { key, size, count })
            .collect();
        v.sort_by(|a, b| (b.size, b.count, &a.key).cmp(&(a.size, a.count, &b.key)));
        v
    }

    /// Each group's growth since `old`, the largest change first (Python's `Snapshot.compare_to`).
    pub fn compare_to(&self, old: &Snapshot, by: GroupBy) -> Vec<StatisticDiff> {
        let new = self.groups(by);
        let mut old = old.groups(by);
        let mut v: Vec<StatisticDiff> = new
            .into_iter()
            .map(|(key, (size, count))| {
                let (os, oc) = old.remove(&key).unwrap_or((0, 0));
                StatisticDiff {
                    key,
                    size,
                    size_diff: size as isize - os as isize,
                    count,
                    count_diff: count as isize - oc as isize,
                }
            })
            .collect();
        v.extend(old.into_iter().map(|(key, (os, oc))| StatisticDiff {
            key,
            size: 0,
            size_diff: -(os as isize),
            count: 0,
            count_diff: -(oc as isize),
        }));
        v.sort_by(|a, b| {
            (b.size_diff.unsigned_abs(), b.size, &a.key).cmp(&(
                a.size_diff.unsigned_abs(),
                a.size,
                &b.key,
            ))
        });
        v
    }
}

/// Whether a resolved frame belongs to the allocator, the standard library or the unwinder, which a
/// call site never names.
fn internal(file: &str) -> bool {
    file.contains("/rustc/")
        || file.contains("/library/alloc/")
        || file.contains("/library/core/")
        || file.contains("/library/std/")
        || file.contains("/backtrace-")
        || file.starts_with(concat!(env!("CARGO_MANIFEST_DIR"), "/src/"))
}

/// Whether a function is the `#[global_allocator]` shim, which the attribute places at the static's line
/// in the user's file.
fn shim(name: &str) -> bool {
    [
        "__rust_alloc",
        "__rust_dealloc",
        "__rust_realloc",
        "__rust_alloc_zeroed",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// Resolves raw return addresses to the first `n` frames outside the allocator and the standard
/// library (inlined frames count as frames), caching each address's frames in `cache`.
fn resolve_cached(raw: &[usize], n: usize, cache: &mut HashMap<usize, Vec<Frame>>) -> Vec<Frame> {
    let mut out = Vec::new();
    for &ip in raw {
        let frames = cache.entry(ip).or_insert_with(|| {
            let mut v = Vec::new();
            // A return address points after the call; one byte back is inside the call's line.
            backtrace::resolve(ip.saturating_sub(1) as *mut core::ffi::c_void, |sym| {
                let is_shim = sym.name().is_some_and(|n| shim(&n.to_string()));
                if let (Some(file), Some(line), false) = (sym.filename(), sym.lineno(), is_shim) {
                    let file = file.display().to_string();
                    if !internal(&file) {
                        v.push(Frame { file, line });
                    }
                }
            });
            v
        });
        out.extend(frames.iter().take(n - out.len()).cloned());
        if out.len() >= n {
            break;
        }
    }
    out
}

/// [`resolve_cached`] with a cache of its own.
#[cfg(feature = "debug")]
pub(super) fn resolve_user_frames(raw: &[usize], n: usize) -> Vec<Frame> {
    resolve_cached(raw, n, &mut HashMap::new())
}

/// A snapshot from copied table entries and the stacks they use (by id).
pub(super) fn build(entries: Vec<Entry>, stacks: Vec<(u32, Stack)>, n: usize) -> Snapshot {
    let mut cache = HashMap::new();
    let sites: HashMap<u32, Vec<Frame>> = stacks
        .iter()
        .map(|(id, s)| {
            (
                *id,
                resolve_cached(&s.frames[..s.len as usize], n, &mut cache),
            )
        })
        .collect();
    let traces = entries
        .into_iter()
        .map(|e| Trace {
            size: e.size,
            frames: sites.get(&e.stack).cloned().unwrap_or_default(),
            tag: e.tag,
            class: (e.class != u16::MAX).then_some(e.class as usize),
        })
        .collect();
    Snapshot { traces }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_like_fnmatch() {
        assert!(glob(b"*/tests/*.rs", b"/a/b/tests/trace.rs"));
        assert!(glob(b"*.r?", b"x.rs"));
        assert!(!glob(b"*/src/*", b"/a/tests/x.rs"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a", b""));
    }
}
