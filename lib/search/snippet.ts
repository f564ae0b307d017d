/**
 * The highlight every engine returns: computed here on the original text, from the same folded
 * words the query matched (folding.ts), never by an engine's own highlighter. Short messages are
 * shown whole; long ones are cut to the words around the matches, like FTS5's snippet().
 */
import { wordSpans, type WordSpan } from "./folding";
import { MARK_CLOSE, MARK_OPEN, markedToHtml, stripMarkers } from "./highlight";

const SNIPPET_WORDS = 16;
const ELLIPSIS = "…";

/** Mirrors the query: every word but the last must match exactly, the last also as a prefix. */
function wordMatches(word: WordSpan, terms: readonly string[]): boolean {
	const last = terms[terms.length - 1];
	return last !== undefined && word.folded.some((f) => f.startsWith(last) || terms.includes(f));
}

/** First word of the snippet: the matches that fit in one snippet from the first one, centred like FTS5's snippet(). */
function snippetStart(matched: boolean[]): number {
	const first = Math.max(0, matched.indexOf(true));
	let last = first;
	for (let i = first; i < Math.min(matched.length, first + SNIPPET_WORDS); i++) if (matched[i]) last = i;
	const lead = Math.floor((SNIPPET_WORDS - (last - first + 1)) / 2);
	return Math.max(0, Math.min(first - lead, matched.length - SNIPPET_WORDS));
}

/** HTML-safe snippet of text with the words matching the folded query terms in <mark>. */
export function highlight(original: string, terms: readonly string[]): string {
	const text = stripMarkers(original);
	const words = wordSpans(text);
	const matched = words.map((w) => wordMatches(w, terms));
	const from = snippetStart(matched);
	const to = Math.min(words.length, from + SNIPPET_WORDS);
	let marked = from > 0 ? ELLIPSIS : "";
	let cursor = from > 0 ? words[from]!.start : 0;
	for (let i = from; i < to; i++) {
		const word = words[i]!;
		marked += text.slice(cursor, word.start);
		const slice = text.slice(word.start, word.end);
		marked += matched[i] ? `${MARK_OPEN}${slice}${MARK_CLOSE}` : slice;
		cursor = word.end;
	}
	marked += to < words.length ? ELLIPSIS : text.slice(cursor);
	return markedToHtml(marked);
}
