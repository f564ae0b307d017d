/**
 * What a push says, as FCM v1 messages (firebase-admin's `Message`). Built from
 * the same server-computed unread as every device shows (invariant 5), keyed by
 * conversation so a newer push, a retry or a "read elsewhere" replaces the last
 * one instead of stacking up.
 */
import type { Message as FcmMessage } from "firebase-admin/messaging";
import type { Message } from "../../contract";
import type { AppendResult } from "../store/chat-store";
import { unreadCount } from "../unread";
import type { PushDevice } from "./device-registry";

/** Characters of message text shown in a notification. */
const PREVIEW_CHARS = 120;

export type PushJob = (
	| { kind: "message"; message: Message; listingTitle: string | null; recipients: { userId: string; unread: number }[] }
	| { kind: "read"; conversationId: string; userId: string; unread: number }
) & { queuedAt: number };

/** The push work of a stored message: every member but the sender, each with their own unread. */
export function messagePushJob(result: AppendResult): PushJob {
	const { message, conversation, members } = result;
	const recipients = members.filter((m) => m.userId !== message.senderId).map((m) => ({ userId: m.userId, unread: unreadCount(conversation.lastSeq, m) }));
	return { kind: "message", message, listingTitle: conversation.listingTitle, recipients, queuedAt: Date.now() };
}

function preview(text: string): string {
	const chars = [...text.replace(/\s+/g, " ").trim()];
	return chars.length > PREVIEW_CHARS ? `${chars.slice(0, PREVIEW_CHARS - 1).join("")}…` : chars.join("");
}

/** A new message for a device with no live session. */
export function messageNotification(device: PushDevice, message: Message, listingTitle: string | null, unread: number): FcmMessage {
	const tag = message.conversationId;
	return {
		token: device.token,
		notification: { title: listingTitle ?? "New message", body: preview(message.text) },
		// FCM data values are strings.
		data: { type: "message.new", conversationId: message.conversationId, messageId: message.id, seq: String(message.seq), senderId: message.senderId, unread: String(unread) },
		android: { priority: "high", collapseKey: tag, notification: { tag, notificationCount: unread } },
		apns: { headers: { "apns-collapse-id": tag }, payload: { aps: { badge: unread, threadId: tag } } },
		webpush: { headers: { Topic: topicOf(tag) }, notification: { tag } },
	};
}

/** The user read the conversation on another device: clear its notification here (silent). */
export function readNotification(device: PushDevice, conversationId: string, unread: number): FcmMessage {
	return {
		token: device.token,
		data: { type: "conversation.read", conversationId, unread: String(unread) },
		android: { priority: "high", collapseKey: conversationId },
		apns: {
			headers: { "apns-collapse-id": conversationId, "apns-push-type": "background", "apns-priority": "5" },
			payload: { aps: { contentAvailable: true, badge: unread } },
		},
		webpush: { headers: { Topic: topicOf(conversationId) } },
	};
}

/** Web push topics are at most 32 URL-safe characters. */
function topicOf(conversationId: string): string {
	return conversationId.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 32);
}
