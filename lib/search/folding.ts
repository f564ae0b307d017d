/**
 * What "this message matches that query" means, written once for every engine. Words are runs of
 * letters, marks and digits; both sides are folded the same way (lower case, compatibility forms,
 * Latin diacritics removed), every query word but the last must equal a word of the message, and
 * the last one may also be the start of a word, as the user is still typing it.
 *
 * Elasticsearch indexes the folded words and matches terms; SQLite checks candidates here (see
 * sqlite-search.ts); both highlight from the same words (snippet.ts), so no engine can disagree
 * with its own highlight.
 */
import { queryTerms } from "./highlight";

/** A word is a run of letters, marks and digits: the same rule queryTerms applies to queries. */
const WORD = /[\p{L}\p{M}\p{N}]+/gu;
/** Diacritics are dropped from Latin letters only, like FTS5's remove_diacritics; elsewhere marks are spelling. */
const LATIN_DIACRITICS = /(\p{Script=Latin})\p{M}+/gu;
/** Latin letters that carry their stroke inside the code point, so NFKD cannot strip it. */
const UNDECOMPOSABLE: Record<string, string> = { "ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ı": "i", "ß": "ss", "æ": "ae", "œ": "oe", "þ": "th" };
const UNDECOMPOSABLE_CHARS = /[øłđħıßæœþ]/g;
/** Most chat is plain ASCII, where folding is only lower-casing: worth a path of its own when scanning. */
const ASCII = /^[\x00-\x7f]*$/;
const ASCII_WORD = /[a-z0-9]+/g;

/**
 * The comparable forms of one word: lower-cased, compatibility-decomposed ("ﬁ" -> "fi"),
 * Latin diacritics removed ("Café" -> "cafe"). Decomposition can split a word ("¼" -> "1⁄4"),
 * hence a list.
 */
export function foldWord(word: string): string[] {
	const folded = word
		.toLowerCase()
		.normalize("NFKD")
		.replace(LATIN_DIACRITICS, "$1")
		.normalize("NFC")
		.replace(UNDECOMPOSABLE_CHARS, (c) => UNDECOMPOSABLE[c]!);
	return folded.match(WORD) ?? [];
}

/** The folded words of a query: the user's text is only ever split into words, never parsed as syntax. */
export function foldedQueryTerms(text: string): string[] {
	return queryTerms(text).flatMap(foldWord);
}

export interface WordSpan {
	start: number;
	end: number;
	folded: string[];
}

/** The words of a text with their offsets, for highlighting the original. */
export function wordSpans(text: string): WordSpan[] {
	return [...text.matchAll(WORD)].map((m) => ({ start: m.index!, end: m.index! + m[0].length, folded: foldWord(m[0]) }));
}

/** Every folded word of a text, in order: what a query is matched against. */
export function foldedWords(text: string): string[] {
	if (ASCII.test(text)) return text.toLowerCase().match(ASCII_WORD) ?? [];
	return (text.match(WORD) ?? []).flatMap(foldWord);
}

/** The folded words joined by spaces: the searchable form Elasticsearch indexes. */
export function foldedText(text: string): string {
	return foldedWords(text).join(" ");
}

/** How a text matches a query: not at all, with its last word only as the start of a word, or every word whole. */
export type Match = "none" | "prefix" | "whole";

/**
 * Matches a text against folded query terms (foldedQueryTerms, not empty). Whole matches rank
 * above prefix-only ones: someone who typed "bike" wants "bike" before "bikes".
 */
export function matchText(text: string, terms: readonly string[]): Match {
	// Cheap rejection first: almost every scanned message lacks some term, and plain ASCII text
	// holds each folded word as a substring of its lower-cased form.
	if (ASCII.test(text)) {
		const lower = text.toLowerCase();
		for (const term of terms) if (!lower.includes(term)) return "none";
	}
	return matchWords(foldedWords(text), terms);
}

function matchWords(words: readonly string[], terms: readonly string[]): Match {
	const last = terms.length - 1;
	for (let i = 0; i < last; i++) if (!words.includes(terms[i]!)) return "none";
	const typing = terms[last]!;
	let match: Match = "none";
	for (const word of words) {
		if (word === typing) return "whole";
		if (word.startsWith(typing)) match = "prefix";
	}
	return match;
}
