/**
 * Identifiers. A conversation id is derived from its (buyer, seller, listing)
 * trio, so opening is idempotent on any engine, keyed with the deployment's
 * secret so nobody can compute the id of someone else's conversation and probe it.
 */
import { createHmac, randomUUID } from "node:crypto";

export function conversationIdFor(deploymentSecret: string, buyerId: string, sellerId: string, listingId: string): string {
	const digest = createHmac("sha256", deploymentSecret).update(JSON.stringify([buyerId, sellerId, listingId])).digest("base64url");
	return `c_${digest.slice(0, 22)}`;
}

export function newMessageId(): string {
	return `m_${randomUUID()}`;
}
