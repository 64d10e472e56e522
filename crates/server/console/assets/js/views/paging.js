// Token paging for listings: Previous / Next over `next_page_token`, with the tokens seen kept
// on a stack so Previous goes back exactly.

import { button, h, showError } from '../dom.js';

/**
 * Fills `where` with the first page of `fetchPage(query)` drawn by `draw(items, page)`, and
 * Previous/Next buttons. `fetchPage` gets `{page_size, page_token, …extra}` and answers a
 * native page (`{items, meta: {next_page_token}}`) or anything `normalise` turns into one.
 */
export async function pager(where, fetchPage, draw, { pageSize = 20, extra = {}, normalise = (p) => p } = {}) {
  const tokens = [undefined];
  let index = 0;
  const body = h('div');
  const status = h('span', { class: 'muted', 'aria-live': 'polite' });
  const prev = button('Previous page', () => go(index - 1), { kind: 'small' });
  const next = button('Next page', () => go(index + 1), { kind: 'small' });
  const controls = h('div', { class: 'pager' }, prev, status, next);
  where.replaceChildren(body, controls);

  async function go(to) {
    prev.disabled = true;
    next.disabled = true;
    try {
      const page = normalise(await fetchPage({ page_size: pageSize, page_token: tokens[to], ...extra }));
      index = to;
      tokens[index + 1] = page.meta?.next_page_token ?? undefined;
      tokens.length = index + 2;
      body.replaceChildren(draw(page.items, page));
      status.textContent = `Page ${index + 1}`;
      prev.disabled = index === 0;
      next.disabled = !tokens[index + 1];
      controls.hidden = index === 0 && !tokens[index + 1];
    } catch (err) {
      showError(body, err);
      prev.disabled = index === 0;
      next.disabled = !tokens[index + 1];
    }
  }
  await go(0);
  return { reload: () => go(index) };
}
