// The web client's Markdown under node's test runner: what is rendered, what never is, and streaming that only grows.
import assert from "node:assert/strict";
import { test } from "node:test";
import { toHtml } from "../../web/js/markdown/parse.js";
import { completeLength, settle } from "../../web/js/markdown/stream.js";
import { markerOf } from "../../web/js/ui/sources.js";

/** The text a reader sees in some HTML, without whitespace. */
const visible = (html) =>
  html
    .replace(/<[^>]+>/g, "")
    .replace(/&#(\d+);/g, (_, c) => String.fromCharCode(Number(c)))
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, "");

test("raw HTML is shown as text, never as markup", () => {
  const html = toHtml('Hi <script>alert(1)</script> and <img src=x onerror="alert(2)">\n\n<div onclick="x()">block</div>');
  assert.doesNotMatch(html, /<script|<img|<div/);
  assert.match(html, /&#60;script&#62;alert\(1\)&#60;\/script&#62;/);
});

test("links: only http(s) and mailto, opened in a new tab without a way back", () => {
  const html = toHtml("[ok](https://example.com/a?b=1&c=2) [mail](mailto:a@b.c) [bad](javascript:alert(1)) [data](data:text/html,x) ![pic](https://e.com/p.png)");
  assert.match(html, /<a href="https:\/\/example.com\/a\?b=1&#38;c=2" target="_blank" rel="noopener noreferrer">ok<\/a>/);
  assert.match(html, /<a href="mailto:a@b.c"/);
  assert.doesNotMatch(html, /javascript:|data:text|<img/);
  assert.match(html, /bad/);
  assert.match(html, /pic/); // an image is its alt text
});

test("citation markers become spans; not in code, not link labels", () => {
  const html = toHtml("Seven years [1][2], see [3](https://e.com). Code `[4]`.\n\n```\n[5]\n```");
  assert.match(html, /<span class="cite" data-cite="1">\[1\]<\/span><span class="cite" data-cite="2">\[2\]<\/span>/);
  assert.doesNotMatch(html, /data-cite="[345]"/);
});

test("a source is cited by the server's `n`, else by its 1-based place", () => {
  const source = { document_name: "d.md", score: 1, snippet: "s" };
  assert.equal(markerOf({ ...source, n: 4 }, 0), 4);
  assert.equal(markerOf(source, 0), 1);
  assert.equal(markerOf(source, 2), 3);
});

test("tables, lists and fenced code are GitHub-flavoured", () => {
  const html = toHtml("| a | b |\n|---|--:|\n| 1 | 2 |\n\n- x\n- y\n\n```python\nprint(1)\n```");
  assert.match(html, /<table>[\s\S]*<th>a<\/th>[\s\S]*<td align="right">2<\/td>/);
  assert.match(html, /<ul>\s*<li>x<\/li>/);
  assert.match(html, /<pre><code class="language-python">print\(1\)/);
});

test("complete blocks end at the blank line before the last block", () => {
  assert.equal(completeLength("para"), 0);
  assert.equal(completeLength("a\n\nb"), 3);
  assert.equal(completeLength("a\n\n- x\n- y\n\n"), 3); // the list may get another item
  assert.equal(completeLength("- x\n\n- y"), 0); // one loose list
  assert.equal(completeLength("```\ncode\n\nmore\n```\n\nz"), 20); // a blank line inside a fence is code
  assert.equal(completeLength("```\nstill open\n\ncode"), 0);
});

test("settle holds back or closes half-written syntax", () => {
  assert.equal(settle("**bo"), "**bo**");
  assert.equal(settle("it *is"), "it *is*");
  assert.equal(settle("x `co"), "x `co`");
  assert.equal(settle("see [li"), "see ");
  assert.equal(settle("see [link](https://exa"), "see ");
  assert.equal(settle("see [link](https://e.com) ok"), "see [link](https://e.com) ok");
  assert.equal(settle("Done [1"), "Done ");
  assert.equal(settle("| a | b |\n|--"), "");
  assert.equal(settle("| a | b |\n|---|---|\n| 1"), "| a | b |\n|---|---|\n| 1");
  assert.equal(settle("```py"), "");
  assert.equal(settle("```py\nprint("), "```py\nprint(");
  assert.equal(settle("```py\nx\n``"), "```py\nx");
  assert.equal(settle("list\n- "), "list");
  assert.equal(settle("# "), "");
});

const SAMPLE = `## Zephyr-9 at a glance

The lamp is **under warranty** for *seven years* [1], see the [manual](https://example.com/zephyr?a=1&b=2).
Inline \`code\` and ~~old~~ text, a [2] and [7].

- Beam: 22 nautical miles
- Bulbs: from the **harbour office**

1. First
2. Second

| Part | Years |
|------|------:|
| Lamp | 7 |
| Bulb | 1 |

\`\`\`python
def warranty(years: int) -> str:
    return f"{years} years"  # [1] stays code
\`\`\`

> Quoted <script>window.__pwned = 1</script> text.

Unsafe [link](javascript:alert(1)) and <img src=x onerror="window.__pwned = 2"> end.`;

test("streamed character by character, the text shown only grows, and ends as the whole answer rendered", () => {
  let committed = "";
  let offset = 0;
  let previous = 0;
  let renders = 0;
  for (let i = 1; i <= SAMPLE.length; i++) {
    const text = SAMPLE.slice(0, i);
    const last = i === SAMPLE.length;
    const tail = text.slice(offset);
    const complete = last ? 0 : completeLength(tail);
    if (complete) {
      committed += toHtml(tail.slice(0, complete)); // rendered once, never again
      offset += complete;
    }
    const open = text.slice(offset);
    const shown = visible(committed + toHtml(last ? open : settle(open)));
    assert.ok(shown.length >= previous, `step ${i}: ${JSON.stringify(text.slice(-30))} shrank ${previous} → ${shown.length}`);
    previous = shown.length;
    renders += 1;
  }
  assert.ok(offset > SAMPLE.length / 2, "most blocks were complete before the end");
  assert.equal(visible(committed + toHtml(SAMPLE.slice(offset))), visible(toHtml(SAMPLE)));
  assert.equal(renders, SAMPLE.length);
});
