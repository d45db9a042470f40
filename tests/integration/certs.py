"""
Test certificates, made with the openssl command: a private CA and leaf
certificates signed by it, for TLS listeners and peers. Keys are EC P-256
(fast to make); `expired=True` makes a leaf whose validity ended.
"""
import subprocess
from pathlib import Path


def _run(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


class CA:
    def __init__(self, directory, name="petrel test CA"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = self.dir / "ca.key"
        self.cert = self.dir / "ca.crt"
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(self.key), "-out", str(self.cert), "-days", "30",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self._serial = 1

    def leaf(self, name, sans=None):
        """(cert, key) paths for a server certificate for name (and sans)."""
        self._serial += 1
        base = f"{name}-{self._serial}"
        key, csr, cert, ext = (self.dir / (base + s) for s in (".key", ".csr", ".crt", ".ext"))
        alt = ",".join(("IP:" if s.replace(".", "").isdigit() or ":" in s else "DNS:") + s
                       for s in [name] + list(sans or []))
        ext.write_text(f"subjectAltName={alt}\nextendedKeyUsage=serverAuth,clientAuth\n"
                       "basicConstraints=CA:FALSE\n")
        _run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
        _run("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
             "-set_serial", str(self._serial), "-extfile", str(ext), "-out", str(cert), "-days", "30")
        return cert, key
