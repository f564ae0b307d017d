/**
 * The receiving side of every socket: message.new feeds the tracker (latency
 * from the intended time carried in the text), checks per-conversation order,
 * and optionally marks delivery. Every other server event is only counted.
 */
import type { Socket } from "socket.io-client";
import type { Message, ServerEventName } from "../../contract";
import type { DeliveredMarker } from "./receipts";
import type { MessageTracker } from "./tracker";
import { gidOf, intendedAtOf } from "./payload";

const COUNTED_EVENTS: readonly ServerEventName[] = [
	"message.updated",
	"receipt.updated",
	"typing",
	"presence",
	"conversation.updated",
	"server.draining",
];

export class Recipients {
	readonly otherEvents: Record<string, number> = {};
	outOfOrder = 0;
	disconnects = 0;

	constructor(
		private readonly tracker: MessageTracker,
		private readonly marker: DeliveredMarker | undefined,
	) {}

	attach(socket: Socket): void {
		const lastSeqByConversation = new Map<string, number>();
		socket.on("message.new", (m: Message) => {
			const now = performance.now();
			this.tracker.delivered(gidOf(m.clientMsgId), intendedAtOf(m.text), now);
			const last = lastSeqByConversation.get(m.conversationId) ?? 0;
			if (m.seq <= last) this.outOfOrder++;
			else lastSeqByConversation.set(m.conversationId, m.seq);
			this.marker?.note(socket, m.conversationId, m.seq);
		});
		for (const event of COUNTED_EVENTS) {
			socket.on(event, () => {
				this.otherEvents[event] = (this.otherEvents[event] ?? 0) + 1;
			});
		}
		socket.on("disconnect", () => this.disconnects++);
	}
}
