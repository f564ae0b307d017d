/**
 * Engines mark matches with private-use characters; this turns that into
 * HTML-safe text (everything escaped) with matches wrapped in <mark>, so a
 * client can insert a highlight without opening an injection hole.
 */
export const MARK_OPEN = "\uE000";
export const MARK_CLOSE = "\uE001";

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function markedToHtml(marked: string): string {
	return marked
		.replace(/[&<>"']/g, (c) => ESCAPES[c]!)
		.replaceAll(MARK_OPEN, "<mark>")
		.replaceAll(MARK_CLOSE, "</mark>");
}

/** Words of a user query, lower-cased, without syntax characters: safe to quote into any engine. */
export function queryTerms(q: string): string[] {
	return q
		.normalize("NFKC")
		.toLowerCase()
		.split(/[^\p{L}\p{N}]+/u)
		.filter((t) => t.length > 0)
		.slice(0, 16);
}
