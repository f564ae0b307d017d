/**
 * Engines mark matches with private-use characters; this turns that into
 * HTML-safe text (everything escaped) with matches wrapped in <mark>, so a
 * client can insert a highlight without opening an injection hole.
 */
/** Unicode noncharacters: never valid in interchanged text, and removed from messages at send. */
export const MARK_OPEN = "\uFDD0";
export const MARK_CLOSE = "\uFDD1";

/** Removes the characters the highlighter uses as markers, so no message can forge a <mark>. */
export function stripMarkers(text: string): string {
	return text.replace(/[\uFDD0-\uFDEF]/g, "");
}

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
		// Combining marks (Devanagari vowel signs, Thai tone marks...) belong to their word.
		.split(/[^\p{L}\p{M}\p{N}]+/u)
		.filter((t) => t.length > 0)
		.slice(0, 16);
}
