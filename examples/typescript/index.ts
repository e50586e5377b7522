// A pool, a base image, an overlay and a guest through the native tdx provider, in TypeScript:
// the SDK in sdk/nodejs (@pulumi-tdx/tdx), generated from the provider's schema by `make sdks`.
import * as pulumi from "@pulumi/pulumi";
import * as tdx from "@pulumi-tdx/tdx";

const cfg = new pulumi.Config();
const prefix = cfg.require("prefix");

const pool = new tdx.Pool("pool", { name: prefix, path: cfg.require("poolPath"), autostart: false });
const base = new tdx.BaseImage("base", {
    pool: pool.name,
    name: `${prefix}-base`,
    source: cfg.require("baseImage"),
});
const disk = new tdx.Overlay("disk", {
    pool: pool.name,
    name: `${prefix}-disk`,
    baseImage: base.path,
});
// No `network`: no second NIC (add `network: "default"` for libvirt's default network).
const td = new tdx.TrustDomain("td", {
    name: `${prefix}-td`,
    overlay: disk.path,
    memoryMib: cfg.requireNumber("memoryMib"),
    vcpus: cfg.requireNumber("vcpus"),
    tdx: cfg.requireBoolean("tdx"),
    domainType: cfg.require("domainType"),
    vsock: cfg.requireBoolean("vsock"),
    kernel: cfg.get("kernel"),
    initrd: cfg.get("initrd"),
    cmdline: cfg.get("cmdline"),
    consoleLog: cfg.require("consoleLog"),
});

export const name = td.name;
export const state = td.state;
export const sshPort = td.sshPort;
export const overlay = disk.path;
