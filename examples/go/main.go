// A pool, a base image, an overlay and a trust domain through the native tdx provider, in Go.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"pulumi-tdx.local/sdk/go/tdx"
)

// optional is nil for an empty setting, so the provider's default (or "none") applies.
func optional(value string) pulumi.StringPtrInput {
	if value == "" {
		return nil
	}
	return pulumi.String(value)
}

func orDefault[T comparable](value, fallback T) T {
	var zero T
	if value == zero {
		return fallback
	}
	return value
}

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		cfg := config.New(ctx, "")
		prefix := orDefault(cfg.Get("prefix"), "tdx-go")

		pool, err := tdx.NewPool(ctx, "pool", &tdx.PoolArgs{
			Name:      pulumi.String(prefix),
			Path:      pulumi.String(orDefault(cfg.Get("poolPath"), "/var/lib/pulumi-tdx/go")),
			Autostart: pulumi.Bool(false),
		})
		if err != nil {
			return err
		}
		base, err := tdx.NewBaseImage(ctx, "base", &tdx.BaseImageArgs{
			Pool:   pool.Name,
			Name:   pulumi.String(prefix + "-base"),
			Source: pulumi.String(cfg.Require("baseImage")),
		})
		if err != nil {
			return err
		}
		disk, err := tdx.NewOverlay(ctx, "disk", &tdx.OverlayArgs{
			Pool:      pool.Name,
			Name:      pulumi.String(prefix + "-disk"),
			BaseImage: base.Path,
		})
		if err != nil {
			return err
		}
		td, err := tdx.NewTrustDomain(ctx, "td", &tdx.TrustDomainArgs{
			Name:       pulumi.String(prefix + "-td"),
			Overlay:    disk.Path,
			MemoryMib:  pulumi.Int(orDefault(cfg.GetInt("memoryMib"), 2048)),
			Vcpus:      pulumi.Int(orDefault(cfg.GetInt("vcpus"), 2)),
			Tdx:        pulumi.Bool(cfg.Get("tdx") != "false"),
			DomainType: pulumi.String(orDefault(cfg.Get("domainType"), "kvm")),
			Kernel:     optional(cfg.Get("kernel")),
			Initrd:     optional(cfg.Get("initrd")),
			Cmdline:    optional(cfg.Get("cmdline")),
			Vsock:      pulumi.Bool(cfg.Get("vsock") != "false"),
			Network:    optional(cfg.Get("network")),
			ConsoleLog: pulumi.String(orDefault(cfg.Get("consoleLog"), "/var/log/pulumi-tdx-go-td.log")),
		})
		if err != nil {
			return err
		}
		ctx.Export("name", td.Name)
		ctx.Export("state", td.State)
		ctx.Export("sshPort", td.SshPort)
		ctx.Export("overlay", disk.Path)
		return nil
	})
}
