/**
 * Invariant 7 across a crash: typing state lives on the gateway that holds the
 * typist's socket, so a gateway killed with -9 can never send "typing: false".
 * The indicator must still go away on the other side within the TTL: each
 * `typing: true` says how long it lasts, and the client SDK ends it by itself.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ParleyClient } from "../../client";
import type { TypingEvent } from "../../contract";
import { startCluster, type ClusterHandle } from "../../scripts/cluster-launcher";
import { enginesMissing } from "../support/engines";
import { RawClient, devToken, sleep, until } from "../support/server";

const TYPING_TTL_MS = 1500;

describe("typing across a gateway crash", async () => {
	const missing = await enginesMissing();
	if (missing) {
		it("needs Cassandra and Elasticsearch", { skip: missing }, () => undefined);
		return;
	}
	let cluster: ClusterHandle;
	before(async () => {
		cluster = await startCluster({ gateways: 2, cores: 1, env: { PARLEY_TYPING_TTL_MS: String(TYPING_TTL_MS) } });
	});
	after(async () => {
		await cluster?.stop();
	});

	it("the typist's gateway dies: the other side stops showing the indicator within the TTL", { timeout: 60_000 }, async () => {
		const [typistGateway, watcherGateway] = cluster.gateways;
		const typist = await RawClient.connect(typistGateway!.url, await devToken(typistGateway!.url, "tc-buyer"), "phone");
		const { id: conversationId } = await typist.call("conversations.open", { listingId: "tc-1", sellerId: "tc-seller" });
		await typist.call("messages.send", { conversationId, clientMsgId: "tc-hello", type: "text", text: "hello" });

		const watcher = new ParleyClient({ url: watcherGateway!.url, token: await devToken(watcherGateway!.url, "tc-seller"), deviceId: "desk" });
		const seen: (TypingEvent & { at: number })[] = [];
		watcher.on("typing", (t) => seen.push({ ...t, at: Date.now() }));
		const raw: TypingEvent[] = [];
		watcher.socket.on("typing", (t: TypingEvent) => raw.push(t));
		await watcher.connect();
		try {
			await typist.call("typing.set", { conversationId, typing: true });
			await until("the watcher sees typing", () => seen.some((t) => t.typing));
			const shownAt = seen.find((t) => t.typing)!.at;
			await cluster.kill(typistGateway!.nodeID, "SIGKILL");
			await until("the indicator ends", () => seen.some((t) => !t.typing), TYPING_TTL_MS + 3000);
			const endedAt = seen.find((t) => !t.typing)!.at;
			assert.ok(endedAt - shownAt <= TYPING_TTL_MS + 500, `ended ${endedAt - shownAt} ms after it was shown`);
			assert.ok(endedAt - shownAt >= TYPING_TTL_MS - 100, "not before the TTL");
			await sleep(200);
			assert.ok(!raw.some((t) => !t.typing), "the server could not say so: the client ended it by itself");
		} finally {
			watcher.close();
			typist.close();
		}
	});
});
