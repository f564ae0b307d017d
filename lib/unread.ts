/**
 * Unread = messages after my read watermark that I did not send (design.md invariant 5).
 * The store keeps, per member, how many messages they sent and how many of those are at
 * or below their read mark, so this is arithmetic instead of a scan of the unread window.
 */
import type { MemberRecord } from "./store/chat-store";

export function unreadCount(lastSeq: number, member: Pick<MemberRecord, "read" | "sentCount" | "sentUpToRead">): number {
	const afterRead = lastSeq - member.read;
	const mineAfterRead = member.sentCount - member.sentUpToRead;
	return Math.max(0, afterRead - mineAfterRead);
}
