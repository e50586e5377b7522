// Intel TDX trust domains, their disks and storage pools on libvirt.
package tdx
