/** Identifiers: conversations are derived from their trio so opening is idempotent on any engine. */
import { createHash, randomUUID } from "node:crypto";

export function conversationIdFor(buyerId: string, sellerId: string, listingId: string): string {
	const digest = createHash("sha256").update(JSON.stringify([buyerId, sellerId, listingId])).digest("base64url");
	return `c_${digest.slice(0, 22)}`;
}

export function newMessageId(): string {
	return `m_${randomUUID()}`;
}
