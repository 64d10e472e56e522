//! Wire types of the native API: they live in `ferrosync-protocol`, shared with the Rust
//! client; the domain → view conversions live in `ferrosync_core::wire`.

use ferrosync_core::page::Page;
pub use ferrosync_protocol::rest::*;

/// A page of views, with the token and URL of the next one.
pub fn page_view<S, T: From<S>>(page: Page<S>, page_size: u32, base_url: &str) -> PageView<T> {
    let token = page.next.map(|t| t.encode());
    let url = token.as_ref().map(|t| format!("{base_url}?page_size={page_size}&page_token={t}"));
    PageView {
        items: page.items.into_iter().map(T::from).collect(),
        meta: PageMeta { page_size, next_page_token: token, next_page_url: url },
    }
}
