/**
 * A bound on what the server holds for one client that does not read. Output for a
 * connection waits in two places: Engine.IO's `writeBuffer` (packets queued while the
 * transport is still busy with earlier ones) and, below it, what the WebSocket has
 * written but the kernel has not taken yet (`bufferedAmount`). Neither stops growing
 * when a client stops reading, so answers and events for it would pile up until the
 * process runs out of memory.
 */

/** The parts of an Engine.IO connection (engine.io's `Socket`) this looks at. */
export interface EngineConnection {
	on(event: "packetCreate", listener: () => void): unknown;
	off(event: "packetCreate", listener: () => void): unknown;
	/** Packets not yet handed to the transport; engine.io replaces the array on every flush. */
	readonly writeBuffer: readonly { data?: unknown }[];
	readonly transport: unknown;
	close(discard?: boolean): unknown;
}

interface WebSocketLike {
	bufferedAmount?: number;
	terminate?: () => void;
}

/**
 * Closes `conn` once more than `maxBytes` are waiting for its client when the server
 * queues another packet, whatever the packet is (an answer, an event, a ping), so a
 * client that never calls again is caught too. What one connection holds is then at
 * most `maxBytes` plus one packet. A connection that keeps up pays O(1) per packet (its
 * writeBuffer is empty), and a queued packet is measured once.
 */
export function closeWhenUnreadExceeds(conn: EngineConnection, maxBytes: number, onClose: (unreadBytes: number) => void): void {
	// The packets at the head of writeBuffer measured so far. engine.io empties the queue by replacing it
	// on each flush, and queues a packet only after this check: a queue no longer than what was measured
	// is a new one. Counting, rather than keeping the array, holds no packet after it is sent.
	let counted = 0;
	let countedBytes = 0;
	const check = () => {
		const queue = conn.writeBuffer;
		if (queue.length <= counted) [counted, countedBytes] = [0, 0];
		for (; counted < queue.length; counted++) countedBytes += packetBytes(queue[counted]!.data);
		const unread = (webSocketOf(conn)?.bufferedAmount ?? 0) + countedBytes;
		if (unread <= maxBytes) return;
		conn.off("packetCreate", check);
		closeNow(conn);
		onClose(unread);
	};
	conn.on("packetCreate", check);
}

/**
 * A client that does not read would not read a close frame either, and a graceful close
 * keeps the buffers for its timeout (30 s): drop the TCP connection, so they are freed now.
 */
function closeNow(conn: EngineConnection): void {
	const ws = webSocketOf(conn);
	if (ws?.terminate) ws.terminate();
	else conn.close(true); // long-polling: nothing is held below the writeBuffer
}

function webSocketOf(conn: EngineConnection): WebSocketLike | undefined {
	return (conn.transport as { socket?: WebSocketLike }).socket;
}

function packetBytes(data: unknown): number {
	if (typeof data === "string") return Buffer.byteLength(data);
	return (data as { byteLength?: number } | undefined)?.byteLength ?? 0;
}
