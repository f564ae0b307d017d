/**
 * The rules a message text must meet, for sending and for editing: not blank (also
 * not merely invisible characters), no NUL, at most `maxLength` code points. The
 * characters the search highlighter uses as markers are removed.
 */
import { invalid, tooLarge } from "./errors";
import { stripMarkers } from "./search/highlight";

/** Anything but whitespace, control (Cc) and format (Cf) characters. */
const VISIBLE_CHARACTER = /[^\s\p{Cc}\p{Cf}]/u;

export function checkedText(raw: string, maxLength: number): string {
	const tooLong = () => tooLarge(`text is longer than ${maxLength} characters`, { field: "text", max: maxLength });
	// Refused before any work on it: a text this long cannot be within the limit (at most 2 units
	// per code point, with room for the markers stripped below), and it could be 1 MB.
	if (raw.length > 4 * maxLength) throw tooLong();
	if (raw.includes("\0")) throw invalid("text must not contain NUL characters", { field: "text" });
	const text = stripMarkers(raw);
	if (text.length > maxLength && [...text].length > maxLength) throw tooLong();
	// Blank is also what looks blank: zero-width, bidi and other format or control characters.
	if (!VISIBLE_CHARACTER.test(text)) throw invalid("text must not be empty", { field: "text" });
	return text;
}
