//! `#[derive(Trace)]` for [`poolgc::gc`](https://docs.rs/poolgc): visits every field, and computes
//! `Trace::ACYCLIC` as the AND of the fields' `ACYCLIC`, so a type whose fields cannot own a `Gc` is known
//! to be acyclic at compile time (Bacon–Rajan's green objects) and is never buffered by the collector.
//!
//! Use it through `poolgc::gc::Trace` (feature `derive`):
//!
//! ```ignore
//! use poolgc::gc::{Gc, Trace};
//! use core::cell::RefCell;
//!
//! #[derive(Trace)]
//! struct Node {
//!     name: String,
//!     edges: RefCell<Vec<Gc<Node>>>,
//!     #[trace(skip)] // not visited: must not own a `Gc` (if it does, that `Gc` is only ever leaked)
//!     cache: std::rc::Rc<u64>,
//! }
//! ```
//!
//! `ACYCLIC` of a recursive type would be a cycle in constant evaluation (`struct Tree { kids: Vec<Tree> }`
//! asks `Tree::ACYCLIC` to compute itself), so a field whose type names the type itself (or `Self`) makes
//! the derive say `ACYCLIC = false`; for mutually recursive types (`A` holds `Vec<B>`, `B` holds `Box<A>`)
//! put `#[trace(cyclic)]` on the type to say the same. `false` is always sound: the object is merely
//! considered by the collector.
//!
//! The generated impl is `unsafe impl Trace` and is sound for any struct or enum: it visits each field
//! exactly once through the field's own `Trace` impl. A field marked `#[trace(skip)]` is not visited and
//! does not count towards `ACYCLIC`; a skipped field that owns a `Gc` makes that edge invisible to the
//! collector, which can only keep objects alive (a leak), never free one early. Unions are rejected.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::{parse_macro_input, Data, DeriveInput, Fields, GenericParam, Ident};

/// Derives `poolgc::gc::Trace`. See the crate documentation.
#[proc_macro_derive(Trace, attributes(trace))]
pub fn derive_trace(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Whether `attrs` holds `#[trace(<word>)]`; any other `trace` argument is an error.
fn has_flag(attrs: &[syn::Attribute], word: &str) -> syn::Result<bool> {
    let mut found = false;
    for attr in attrs {
        if attr.path().is_ident("trace") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident(word) {
                    found = true;
                    Ok(())
                } else {
                    Err(meta.error(format!("unknown trace attribute here; expected `{word}`")))
                }
            })?;
        }
    }
    Ok(found)
}

fn is_skipped(attrs: &[syn::Attribute]) -> syn::Result<bool> {
    has_flag(attrs, "skip")
}

/// Whether the tokens of `ty` mention `name` or `Self` (a directly recursive field).
fn mentions(ty: &syn::Type, name: &Ident) -> bool {
    fn walk(ts: TokenStream2, name: &Ident) -> bool {
        ts.into_iter().any(|tt| match tt {
            proc_macro2::TokenTree::Ident(i) => i == *name || i == "Self",
            proc_macro2::TokenTree::Group(g) => walk(g.stream(), name),
            _ => false,
        })
    }
    walk(quote!(#ty), name)
}

/// For one set of fields: the pattern that binds them, the calls that trace them, their types.
fn fields_parts(fields: &Fields) -> syn::Result<(TokenStream2, Vec<TokenStream2>, Vec<syn::Type>)> {
    let mut binds = Vec::new();
    let mut calls = Vec::new();
    let mut types = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let name = format_ident!("__f{}", i);
        let skip = is_skipped(&f.attrs)?;
        match &f.ident {
            Some(id) if skip => binds.push(quote!(#id: _)),
            Some(id) => binds.push(quote!(#id: #name)),
            None if skip => binds.push(quote!(_)),
            None => binds.push(quote!(#name)),
        }
        if !skip {
            calls.push(quote!(::poolgc::gc::Trace::trace(#name, __tracer);));
            types.push(f.ty.clone());
        }
    }
    let pat = match fields {
        Fields::Named(_) => quote!({ #(#binds,)* }),
        Fields::Unnamed(_) => quote!(( #(#binds,)* )),
        Fields::Unit => quote!(),
    };
    Ok((pat, calls, types))
}

fn expand(input: DeriveInput) -> syn::Result<TokenStream2> {
    let name = &input.ident;
    let forced_cyclic = has_flag(&input.attrs, "cyclic")?;
    let mut arms = Vec::new();
    let mut all_types = Vec::new();
    match &input.data {
        Data::Struct(s) => {
            let (pat, calls, types) = fields_parts(&s.fields)?;
            arms.push(quote!(#name #pat => { #(#calls)* }));
            all_types.extend(types);
        }
        Data::Enum(e) => {
            for v in &e.variants {
                if is_skipped(&v.attrs)? {
                    return Err(syn::Error::new_spanned(
                        v,
                        "#[trace(skip)] goes on fields, not variants",
                    ));
                }
                let vname = &v.ident;
                let (pat, calls, types) = fields_parts(&v.fields)?;
                arms.push(quote!(#name::#vname #pat => { #(#calls)* }));
                all_types.extend(types);
            }
        }
        Data::Union(u) => return Err(syn::Error::new_spanned(
            u.union_token,
            "Trace cannot be derived for a union: the collector could not know which field is live",
        )),
    }

    let mut generics = input.generics.clone();
    let type_params: Vec<Ident> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(t.ident.clone()),
            _ => None,
        })
        .collect();
    {
        let wc = generics.make_where_clause();
        for t in &type_params {
            wc.predicates
                .push(syn::parse_quote!(#t: ::poolgc::gc::Trace));
        }
    }
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let acyclic = if forced_cyclic || all_types.iter().any(|t| mentions(t, name)) {
        quote!(false)
    } else {
        quote!(true #(&& <#all_types as ::poolgc::gc::Trace>::ACYCLIC)*)
    };
    let tracer = Ident::new("__tracer", Span::call_site());
    let body = if arms.is_empty() {
        // An enum without variants has no values.
        quote!(match *self {})
    } else {
        quote!(match self { #(#arms)* })
    };
    Ok(quote! {
        // SAFETY: the body visits every field not marked `#[trace(skip)]` exactly once, through that
        // field type's own `Trace` impl, and does nothing else; `ACYCLIC` is true only if it is true of
        // every traced field (a wrong `true` could only hide edges, i.e. leak).
        #[automatically_derived]
        unsafe impl #impl_g ::poolgc::gc::Trace for #name #ty_g #where_c {
            const ACYCLIC: bool = #acyclic;
            #[allow(unused_variables)]
            fn trace(&self, #tracer: &mut ::poolgc::gc::Tracer) {
                #[allow(unused_variables)]
                #body
            }
        }
    })
}
