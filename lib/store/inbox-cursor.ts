/** Opaque inbox paging cursor: the (lastActivityAt, conversationId) of the last item of a page. */
import { invalid } from "../errors";

export function encodeInboxCursor(at: number, id: string): string {
	return Buffer.from(JSON.stringify([at, id])).toString("base64url");
}

export function decodeInboxCursor(cursor: string): { at: number; id: string } {
	try {
		const [at, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown[];
		if (typeof at === "number" && Number.isFinite(at) && typeof id === "string") return { at, id };
	} catch {
		// fall through to the validation error
	}
	throw invalid("before is not a cursor this server issued", { field: "before" });
}
