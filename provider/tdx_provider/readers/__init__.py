"""Typed readers of libvirt XML: the one place the engine reads fields of a libvirt document.

- :mod:`.domain`: domain XML and our metadata element;
- :mod:`.storage`: pool and volume XML;
- :mod:`.capabilities`: KVM domain capabilities and node devices.

Each element is a small class whose properties are declared once (a path and at most one
converter, :mod:`._base`), as virt-manager's virtinst does. Readers only read; rendering is
Jinja2 in :mod:`tdx_provider.guest.xml`. tests/unit/test_only_readers_walk_xml.py keeps other
modules from walking XML themselves.
"""
