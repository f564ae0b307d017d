/** What every DeviceRegistry engine must do (push tokens per user and device). */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { DeviceRegistry, PushDevice } from "../../lib/push/device-registry";

export function deviceRegistryBehaviour(engine: string, create: () => Promise<DeviceRegistry>): void {
	describe(`DeviceRegistry behaviour: ${engine}`, () => {
		let registry: DeviceRegistry;
		before(async () => {
			registry = await create();
			await registry.open();
		});
		after(async () => {
			await registry?.close();
		});
		const device = (userId: string, deviceId: string, token: string): PushDevice => ({ userId, deviceId, token, platform: "android" });
		const tokensOf = async (...userIds: string[]) => (await registry.devicesOf(userIds)).map((d) => `${d.userId}/${d.deviceId}=${d.token}`).sort();

		it("keeps one token per device, the latest", async () => {
			await registry.register(device("ann", "phone", "t-1"));
			await registry.register(device("ann", "laptop", "t-2"));
			await registry.register(device("ann", "phone", "t-3"));
			assert.deepEqual(await tokensOf("ann"), ["ann/laptop=t-2", "ann/phone=t-3"]);
			assert.deepEqual(await tokensOf("nobody"), []);
		});

		it("a token registered by another user moves to them (a phone changed hands)", async () => {
			await registry.register(device("bob", "phone", "shared-token"));
			await registry.register(device("cid", "phone", "shared-token"));
			assert.deepEqual(await tokensOf("bob", "cid"), ["cid/phone=shared-token"]);
		});

		it("unregister and forget remove only what they name", async () => {
			await registry.register(device("dee", "phone", "d-1"));
			await registry.register(device("dee", "tablet", "d-2"));
			await registry.unregister("dee", "phone");
			assert.deepEqual(await tokensOf("dee"), ["dee/tablet=d-2"]);
			// FCM said d-old is gone, but the tablet has registered d-3 since: keep d-3.
			await registry.register(device("dee", "tablet", "d-3"));
			await registry.forget([device("dee", "tablet", "d-2")]);
			assert.deepEqual(await tokensOf("dee"), ["dee/tablet=d-3"]);
			await registry.forget([device("dee", "tablet", "d-3")]);
			assert.deepEqual(await tokensOf("dee"), []);
			// The freed token can be registered again.
			await registry.register(device("eve", "phone", "d-3"));
			assert.deepEqual(await tokensOf("eve"), ["eve/phone=d-3"]);
		});
	});
}
