"""Tests of the client-side envelope: keys, sealing, opening, names and audio secrets."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop.core import envelope
from desktop.core.envelope import (
    OPUS_MEDIA_TYPE,
    POSITION_KDF,
    EnvelopeError,
    KdfParams,
    derive_position_key,
    open_sealed,
    prepare_audio_secret,
    prepare_file_secret,
    safe_name,
    seal,
    sealed_length,
)
from subtone.errors import SubtoneError

CHEAP = KdfParams(log2_n=4, r=1, p=1)
PASSPHRASE = "correct horse battery staple"


def cheap_seal(secret: bytes, passphrase: str = PASSPHRASE, **kw: str) -> envelope.Sealed:
    return seal(
        secret,
        name=kw.get("name", "note.txt"),
        media_type=kw.get("media_type", "text/plain"),
        passphrase=passphrase,
        position_kdf=CHEAP,
    )


def test_public_names() -> None:
    assert set(envelope.__all__) == {
        "MAX_SECRET_BYTES",
        "OPUS_MEDIA_TYPE",
        "POSITION_KDF",
        "EnvelopeError",
        "KdfParams",
        "PreparedSecret",
        "Sealed",
        "Secret",
        "derive_position_key",
        "open_sealed",
        "prefetch_position_key",
        "prepare_audio_secret",
        "prepare_file_secret",
        "safe_name",
        "seal",
        "sealed_length",
    }
    assert all(hasattr(envelope, name) for name in envelope.__all__)


def test_round_trip() -> None:
    sealed = cheap_seal(b"meet me at noon", name="plan.txt", media_type="text/plain")
    secret = open_sealed(sealed.payload, PASSPHRASE)
    assert (secret.data, secret.name, secret.media_type) == (
        b"meet me at noon",
        "plan.txt",
        "text/plain",
    )


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=3000),
    name=st.text(max_size=300),
    passphrase=st.text(min_size=1, max_size=40),
)
def test_round_trip_arbitrary(data: bytes, name: str, passphrase: str) -> None:
    sealed = cheap_seal(data, passphrase, name=name, media_type="application/x-test")
    secret = open_sealed(sealed.payload, passphrase)
    assert secret.data == data
    assert secret.name == safe_name(name)
    assert secret.media_type == "application/x-test"
    assert len(sealed.payload) == sealed_length(
        len(data), name=name, media_type="application/x-test"
    )


def test_passphrase_is_nfc_normalised() -> None:
    sealed = cheap_seal(b"x", "caf\u00e9")
    assert open_sealed(sealed.payload, "cafe\u0301").data == b"x"


def test_payload_layout() -> None:
    sealed = cheap_seal(b"hello")
    payload = sealed.payload
    assert struct.unpack_from(">BBBB", payload) == (2, CHEAP.log2_n, CHEAP.r, CHEAP.p)
    ciphertext = len(payload) - 20 - 12 - 16
    assert ciphertext % 256 == 0
    assert b"hello" not in payload and b"note.txt" not in payload


def test_padding_hides_small_size_differences() -> None:
    assert len(cheap_seal(b"a").payload) == len(cheap_seal(b"a" * 200).payload)


def test_one_scrypt_gives_both_keys_and_its_cost_is_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    envelope._forget_stretches()
    stretches: list[envelope.KdfParams] = []
    stretch = envelope._stretch

    def counted(secret: bytes, salt: bytes, kdf: envelope.KdfParams) -> bytes:
        stretches.append(kdf)
        return stretch(secret, salt, kdf)

    monkeypatch.setattr(envelope, "_stretch", counted)
    sealed = seal(
        b"secret", name="s.bin", media_type="application/octet-stream", passphrase=PASSPHRASE
    )
    assert (POSITION_KDF.log2_n, POSITION_KDF.r, POSITION_KDF.p) == (16, 8, 1)
    assert struct.unpack_from(">BBBB", sealed.payload) == (2, 16, 8, 1)
    assert open_sealed(sealed.payload, PASSPHRASE).data == b"secret"
    assert sealed.k_pos == derive_position_key(PASSPHRASE)
    assert stretches == [POSITION_KDF]  # one scrypt for k_pos, k_enc, the decode and k_pos again


def test_k_enc_is_not_k_pos_and_depends_on_the_salt() -> None:
    secret = PASSPHRASE.encode()
    one = envelope._k_enc(secret, envelope.FORMAT_VERSION, CHEAP, bytes(16))
    two = envelope._k_enc(secret, envelope.FORMAT_VERSION, CHEAP, bytes(15) + b"\x01")
    assert one != two
    assert derive_position_key(PASSPHRASE, position_kdf=CHEAP) not in (one, two)


def test_a_version_1_payload_still_opens() -> None:
    """Written by round 1: ``k_enc`` from its own scrypt with the payload's salt and cost."""
    salt, nonce = bytes(range(16)), bytes(12)
    aad = struct.pack(">BBBB", 1, CHEAP.log2_n, CHEAP.r, CHEAP.p) + salt
    stretched = Scrypt(salt=salt, length=32, n=CHEAP.n, r=CHEAP.r, p=CHEAP.p).derive(
        PASSPHRASE.encode()
    )
    k_enc = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"subtone/v1/k_enc").derive(
        stretched
    )
    frame = envelope._frame(b"from round 1", "old.txt", "text/plain")
    payload = aad + nonce + ChaCha20Poly1305(k_enc).encrypt(nonce, frame, aad)
    assert open_sealed(payload, PASSPHRASE).data == b"from round 1"
    with pytest.raises(EnvelopeError) as caught:
        open_sealed(payload, PASSPHRASE + "!")
    assert caught.value.code == "wrong_passphrase"


def test_wrong_passphrase() -> None:
    sealed = cheap_seal(b"secret")
    with pytest.raises(EnvelopeError) as caught:
        open_sealed(sealed.payload, PASSPHRASE + "!")
    assert caught.value.code == "wrong_passphrase"
    assert "passphrase is wrong" in caught.value.message
    assert isinstance(caught.value, SubtoneError)


def test_tampered_byte_anywhere_is_refused() -> None:
    payload = cheap_seal(b"secret").payload
    for index in range(len(payload)):
        for flip in (0x01, 0x80):
            tampered = bytearray(payload)
            tampered[index] ^= flip
            with pytest.raises(EnvelopeError) as caught:
                open_sealed(bytes(tampered), PASSPHRASE)
            assert caught.value.code in {"wrong_passphrase", "corrupt_payload"}, index


def test_truncated_payload_is_refused() -> None:
    payload = cheap_seal(b"secret").payload
    for length in (0, 1, 20, 47, 48, len(payload) - 1):
        with pytest.raises(EnvelopeError) as caught:
            open_sealed(payload[:length], PASSPHRASE)
        assert caught.value.code in {"wrong_passphrase", "corrupt_payload"}, length


def test_unknown_version_is_corrupt() -> None:
    payload = bytearray(cheap_seal(b"secret").payload)
    payload[0] = 3
    with pytest.raises(EnvelopeError) as caught:
        open_sealed(bytes(payload), PASSPHRASE)
    assert caught.value.code == "corrupt_payload"


def test_impossible_kdf_header_is_corrupt_without_deriving() -> None:
    payload = bytearray(cheap_seal(b"secret").payload)
    payload[1] = 40  # N = 2**40 would exhaust memory
    with pytest.raises(EnvelopeError) as caught:
        open_sealed(bytes(payload), PASSPHRASE)
    assert caught.value.code == "corrupt_payload"


@pytest.mark.parametrize(("log2_n", "r"), [(19, 8), (18, 16), (20, 3)])
def test_a_kdf_over_twice_the_defaults_memory_is_refused_unrun(
    log2_n: int, r: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile stego file cannot make the client spend 512 MiB or more on scrypt."""
    payload = bytearray(cheap_seal(b"secret").payload)
    payload[1], payload[2] = log2_n, r
    monkeypatch.setattr(envelope, "_stretch", lambda *a: pytest.fail("scrypt was run"))
    monkeypatch.setattr(envelope, "_position_stretch", lambda *a: pytest.fail("scrypt was run"))
    with pytest.raises(EnvelopeError) as caught:
        open_sealed(bytes(payload), PASSPHRASE)
    assert caught.value.code == "corrupt_payload"
    assert envelope.MAX_KDF_MEMORY_BYTES == 128 * 8 * 2**17 * 2  # twice version 1's default


def test_malformed_frame_after_decryption_is_corrupt() -> None:
    frame = bytearray(envelope._frame(b"data", "a.txt", "text/plain"))
    frame[-1] = 1  # non-zero padding
    payload = envelope._encrypt(bytes(frame), PASSPHRASE, CHEAP)
    with pytest.raises(EnvelopeError) as caught:
        open_sealed(payload, PASSPHRASE)
    assert caught.value.code == "corrupt_payload"


def test_random_bytes_are_refused() -> None:
    payload = os.urandom(1000)
    with pytest.raises(EnvelopeError) as caught:
        open_sealed(b"\x01\x04\x01\x01" + payload, PASSPHRASE)
    assert caught.value.code == "wrong_passphrase"


def test_empty_secret() -> None:
    with pytest.raises(EnvelopeError) as caught:
        cheap_seal(b"")
    assert caught.value.code == "empty_secret"


def test_empty_passphrase() -> None:
    with pytest.raises(EnvelopeError) as caught:
        cheap_seal(b"x", "")
    assert caught.value.code == "empty_passphrase"
    with pytest.raises(EnvelopeError) as caught:
        derive_position_key("")
    assert caught.value.code == "empty_passphrase"


def test_secret_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envelope, "MAX_SECRET_BYTES", 10)
    with pytest.raises(EnvelopeError) as caught:
        cheap_seal(b"x" * 11)
    assert (caught.value.code, caught.value.status) == ("secret_too_large", 413)


def test_invalid_media_type() -> None:
    with pytest.raises(EnvelopeError) as caught:
        cheap_seal(b"x", media_type="text/plain\r\nX-Evil: 1")
    assert caught.value.code == "invalid_media_type"


def test_position_key_is_deterministic_and_depends_on_passphrase() -> None:
    first = derive_position_key(PASSPHRASE)
    assert len(first) == 32
    assert derive_position_key(PASSPHRASE) == first
    assert derive_position_key(PASSPHRASE + "x") != first


def test_position_key_is_independent_of_the_salt() -> None:
    one, two = cheap_seal(b"a"), cheap_seal(b"a")
    assert one.payload[4:20] != two.payload[4:20]  # different random salts
    assert one.k_pos == two.k_pos == derive_position_key(PASSPHRASE, position_kdf=CHEAP)


def test_keys_are_hidden_from_repr() -> None:
    sealed = cheap_seal(b"top secret")
    assert sealed.k_pos.hex() not in repr(sealed)
    assert "top secret" not in repr(open_sealed(sealed.payload, PASSPHRASE))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("/abs/path/file.txt", "file.txt"),
        ("..", "secret"),
        ("", "secret"),
        ("a\x00b\nc.txt", "a_b_c.txt"),
        ("report\u202etxt.exe", "reporttxt.exe"),
        ("CON.txt", "_CON.txt"),
        ("what?.txt", "what_.txt"),
        (".bashrc", "bashrc"),
    ],
)
def test_safe_name(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected


def test_safe_name_keeps_extension_when_shortening() -> None:
    name = safe_name("é" * 300 + ".ogg")
    assert name.endswith(".ogg")
    assert len(name.encode("utf-8")) <= 255


@given(st.text(max_size=400))
def test_safe_name_is_safe_and_idempotent(raw: str) -> None:
    name = safe_name(raw)
    assert name and "/" not in name and "\\" not in name and name not in {".", ".."}
    assert len(name.encode("utf-8")) <= 255
    assert safe_name(name) == name


def test_traversal_name_in_frame_is_neutralised_on_open() -> None:
    frame = envelope._frame(b"root:x:0:0", "../../etc/passwd", "text/plain")
    payload = envelope._encrypt(frame, PASSPHRASE, CHEAP)
    assert open_sealed(payload, PASSPHRASE).name == "passwd"


def test_traversal_name_is_neutralised_on_seal() -> None:
    sealed = cheap_seal(b"x", name="../../etc/passwd")
    assert open_sealed(sealed.payload, PASSPHRASE).name == "passwd"


def _tone(path: Path, rate: int = 44100, seconds: float = 1.0, freq: float = 440.0) -> float:
    t = np.arange(int(rate * seconds)) / rate
    signal = 0.5 * np.sin(2 * np.pi * freq * t)
    sf.write(path, signal, rate, subtype="PCM_16")
    return float(np.sqrt(np.mean(signal**2)))


def test_audio_secret_is_opus_with_same_tone(tmp_path: Path) -> None:
    wav = tmp_path / "voice note.wav"
    rms_in = _tone(wav)
    data, name, media_type = prepare_audio_secret(wav)
    assert (name, media_type) == ("voice note.opus", OPUS_MEDIA_TYPE)
    assert len(data) < wav.stat().st_size / 4
    decoded, rate = sf.read(io.BytesIO(data), dtype="float64")
    assert rate == 48000
    spectrum = np.abs(np.fft.rfft(decoded * np.hanning(len(decoded))))
    peak = np.fft.rfftfreq(len(decoded), 1 / rate)[int(np.argmax(spectrum))]
    assert abs(peak - 440.0) <= 5.0
    rms_out = float(np.sqrt(np.mean(decoded**2)))
    assert abs(20 * np.log10(rms_out / rms_in)) <= 3.0
    assert list(tmp_path.iterdir()) == [wav]


def test_audio_secret_at_an_opus_rate_keeps_its_rate(tmp_path: Path) -> None:
    wav = tmp_path / "low.wav"
    _tone(wav, rate=16000)
    data, _, _ = prepare_audio_secret(wav)
    assert sf.info(io.BytesIO(data)).samplerate == 16000


def test_opus_input_is_kept_byte_exact(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    _tone(wav)
    data, _, _ = prepare_audio_secret(wav)
    opus = tmp_path / "already.ogg"
    opus.write_bytes(data)
    assert prepare_audio_secret(opus) == (data, "already.opus", OPUS_MEDIA_TYPE)


def test_audio_without_frames_is_empty(tmp_path: Path) -> None:
    wav = tmp_path / "silence.wav"
    sf.write(wav, np.zeros(0), 44100)
    with pytest.raises(EnvelopeError) as caught:
        prepare_audio_secret(wav)
    assert caught.value.code == "empty_secret"


def test_non_audio_file_is_kept_byte_exact(tmp_path: Path) -> None:
    pdf = tmp_path / "scan.pdf"
    content = b"%PDF-1.4\n" + bytes(range(256)) * 4
    pdf.write_bytes(content)
    assert prepare_audio_secret(pdf) == (content, "scan.pdf", "application/pdf")
    assert prepare_file_secret(pdf) == (content, "scan.pdf", "application/pdf")


def test_unknown_file_type_is_octet_stream(tmp_path: Path) -> None:
    blob = tmp_path / "blob.zzunknown"
    blob.write_bytes(b"\x00\x01\x02")
    assert prepare_file_secret(blob).media_type == "application/octet-stream"


def test_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.touch()
    with pytest.raises(EnvelopeError) as caught:
        prepare_file_secret(empty)
    assert caught.value.code == "empty_secret"


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(EnvelopeError) as caught:
        prepare_audio_secret(tmp_path / "gone.wav")
    assert caught.value.code == "unreadable_file"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.sampled_from([8000, 11025, 22050, 32000, 44100, 96000]))
def test_resampler_preserves_a_tone(rate: int) -> None:
    target = envelope._opus_rate(rate)
    signal = np.sin(2 * np.pi * 300 * np.arange(rate) / rate).astype(np.float32)[:, None]
    blocks = [signal[i : i + 5000] for i in range(0, rate, 5000)]
    out = np.concatenate(list(envelope._resample(blocks, rate, target, 1)))[:, 0]
    assert len(out) == target
    expected = np.sin(2 * np.pi * 300 * np.arange(target) / target)
    assert np.max(np.abs(out[100:-100] - expected[100:-100])) < 1e-3


def test_a_prefetched_key_is_the_derived_one_and_is_derived_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    envelope._forget_stretches()
    stretches: list[bytes] = []
    stretch = envelope._stretch

    def counted(secret: bytes, salt: bytes, kdf: envelope.KdfParams) -> bytes:
        stretches.append(secret)
        return stretch(secret, salt, kdf)

    monkeypatch.setattr(envelope, "_stretch", counted)
    envelope.prefetch_position_key("prefetched", position_kdf=POSITION_KDF)
    key = derive_position_key("prefetched")  # waits for the thread's scrypt, or is it
    envelope._forget_stretches()
    monkeypatch.setattr(envelope, "_stretch", stretch)
    assert key == derive_position_key("prefetched")
    assert stretches == [b"prefetched"]


def test_prefetching_an_empty_passphrase_leaves_the_refusal_to_the_caller() -> None:
    envelope.prefetch_position_key("")
    with pytest.raises(EnvelopeError) as caught:
        derive_position_key("")
    assert caught.value.code == "empty_passphrase"
