/**
 * Devices that can receive push notifications: an FCM registration token per
 * (user, device). One implementation per store engine (SQLite embedded,
 * Cassandra in a cluster), both passing tests/support/device-registry-behaviour.ts.
 */
export type Platform = "android" | "ios" | "web";

export interface PushDevice {
	userId: string;
	deviceId: string;
	token: string;
	platform: Platform;
}

export interface DeviceRegistry {
	open(): Promise<void>;
	close(): Promise<void>;
	/**
	 * Sets the device's token. A token belongs to one device: registering it for another
	 * (user, device), e.g. after a sign-out and a sign-in as someone else, moves it there.
	 */
	register(device: PushDevice): Promise<void>;
	/** Forgets the device's token (the app signed out or turned notifications off). */
	unregister(userId: string, deviceId: string): Promise<void>;
	devicesOf(userIds: string[]): Promise<PushDevice[]>;
	/** Drops these tokens if they are still the ones registered (FCM said they are gone). */
	forget(devices: PushDevice[]): Promise<void>;
}
