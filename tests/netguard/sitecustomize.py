"""Loaded by every Python process the tests start (via PYTHONPATH): blocks connections beyond loopback."""
import os, socket

if os.environ.get('MEDREPRO_NO_NETWORK') == '1':
    _connect = socket.socket.connect

    def _guarded(self, address):
        host = address[0] if isinstance(address, tuple) else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ('127.0.0.1', '::1', 'localhost'):
            raise OSError(f'network access blocked in tests: {address}')
        return _connect(self, address)

    socket.socket.connect = _guarded
