//! Known-answer and rejection tests for every primitive of the default provider, run through the
//! `tcpcrypt-proto` traits exactly as the core uses them: private keys come from a fixed-bytes
//! [`Rng`], `Pub` fields are compared byte for byte, peer keys go into `agree` as wire bytes.
//!
//! Sources: RFC 7748 §5.2 and §6 (X25519, X448); RFC 8439 §2.8.2 (ChaCha20-Poly1305); McGrew &
//! Viega, "The Galois/Counter Mode of Operation", test cases 1-4 and 13-16 (AES-GCM); NIST CAVS
//! 14.1 ECC CDH primitive vectors, first P-256 and P-521 entries (SP 800-56A §5.7.1.2); FIPS 186-4
//! §D.1.2 (curve parameters and generators).

use tcpcrypt_crypto::{default_provider, OsRng, DEFAULT_PROVIDER};
use tcpcrypt_proto::consts::{AeadId, TepId, AEAD_TAG_LEN};
use tcpcrypt_proto::crypto::{CryptoError, CryptoProvider, EphemeralSecret, KeyAgreement, Rng};

/// Hex to bytes; whitespace is ignored so long vectors can be split over lines.
fn h(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(s).expect("valid hex in a test vector")
}

/// An [`Rng`] that hands out fixed bytes in order and panics when they run out.
struct FixedRng {
    bytes: Vec<u8>,
    pos: usize,
}

impl FixedRng {
    fn new(bytes: Vec<u8>) -> Self {
        Self { bytes, pos: 0 }
    }
}

impl Rng for FixedRng {
    fn fill(&mut self, dest: &mut [u8]) {
        let end = self.pos + dest.len();
        assert!(end <= self.bytes.len(), "FixedRng exhausted");
        dest.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
    }
}

/// An [`Rng`] that repeats one byte forever.
struct ConstRng(u8);

impl Rng for ConstRng {
    fn fill(&mut self, dest: &mut [u8]) {
        dest.fill(self.0);
    }
}

/// A small deterministic generator (xorshift64*), standing in for the core's seeded test Rng.
struct SeededRng(u64);

impl Rng for SeededRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            *b = (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
        }
    }
}

fn kex(tep: TepId) -> &'static dyn KeyAgreement {
    default_provider()
        .key_agreement(tep)
        .expect("every tcpcrypt TEP is provided")
}

/// The ephemeral secret whose private key is exactly `private` (as the Rng bytes).
fn secret(tep: TepId, private: &[u8]) -> Box<dyn EphemeralSecret> {
    kex(tep)
        .generate(&mut FixedRng::new(private.to_vec()))
        .expect("valid private key")
}

/// X25519(k, u) or X448(k, u) through the trait: k is the Rng output, u the peer `Pub`.
fn scalarmult(tep: TepId, k: &[u8], u: &[u8]) -> Vec<u8> {
    secret(tep, k)
        .agree(u)
        .expect("valid agreement")
        .as_bytes()
        .to_vec()
}

const X25519: TepId = TepId::TCPCRYPT_ECDHE_CURVE25519;
const X448: TepId = TepId::TCPCRYPT_ECDHE_CURVE448;
const P256: TepId = TepId::TCPCRYPT_ECDHE_P256;
const P521: TepId = TepId::TCPCRYPT_ECDHE_P521;

// ---------------------------------------------------------------------------------------------
// X25519 (RFC 7748)
// ---------------------------------------------------------------------------------------------

#[test]
fn x25519_rfc7748_5_2_vectors() {
    let vectors = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ];
    for (k, u, out) in vectors {
        assert_eq!(scalarmult(X25519, &h(k), &h(u)), h(out));
    }
}

/// RFC 7748 §5.2 iteration: k = u = 9; repeatedly (k, u) = (X25519(k, u), k).
fn x25519_iterate(n: usize) -> Vec<u8> {
    let mut k = h("0900000000000000000000000000000000000000000000000000000000000000");
    let mut u = k.clone();
    for _ in 0..n {
        let r = scalarmult(X25519, &k, &u);
        u = std::mem::replace(&mut k, r);
    }
    k
}

#[test]
fn x25519_rfc7748_5_2_iterations() {
    assert_eq!(
        x25519_iterate(1),
        h("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")
    );
    assert_eq!(
        x25519_iterate(1000),
        h("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")
    );
}

#[test]
fn x25519_rfc7748_6_1_diffie_hellman() {
    let alice_priv = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let alice_pub = h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    let bob_priv = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    let bob_pub = h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    let k = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");

    let alice = secret(X25519, &alice_priv);
    let bob = secret(X25519, &bob_priv);
    assert_eq!(alice.public(), &alice_pub[..]);
    assert_eq!(bob.public(), &bob_pub[..]);
    assert_eq!(alice.agree(&bob_pub).expect("agree").as_bytes(), &k[..]);
    assert_eq!(bob.agree(&alice_pub).expect("agree").as_bytes(), &k[..]);
}

#[test]
fn x25519_rejects_wrong_lengths() {
    for len in [0, 1, 31, 33, 35, 56, 64] {
        let s = kex(X25519).generate(&mut OsRng).expect("keygen");
        assert_eq!(
            s.agree(&vec![9; len]).err(),
            Some(CryptoError::InvalidPublicKey),
            "{len}"
        );
    }
}

#[test]
fn x25519_low_order_points_give_all_zero_secret() {
    // The points of order 1, 2, 4 and 8 and their non-canonical encodings (u = p-1, p, p+1).
    let low_order = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    for u in low_order {
        let s = kex(X25519).generate(&mut OsRng).expect("keygen");
        assert_eq!(
            s.agree(&h(u)).err(),
            Some(CryptoError::AllZeroSharedSecret),
            "{u}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// X448 (RFC 7748)
// ---------------------------------------------------------------------------------------------

#[test]
fn x448_rfc7748_5_2_vectors() {
    let vectors = [
        (
            "3d262fddf9ec8e88495266fea19a34d28882acef045104d0d1aae121700a779c
             984c24f8cdd78fbff44943eba368f54b29259a4f1c600ad3",
            "06fce640fa3487bfda5f6cf2d5263f8aad88334cbd07437f020f08f9814dc031
             ddbdc38c19c6da2583fa5429db94ada18aa7a7fb4ef8a086",
            "ce3e4ff95a60dc6697da1db1d85e6afbdf79b50a2412d7546d5f239fe14fbaad
             eb445fc66a01b0779d98223961111e21766282f73dd96b6f",
        ),
        (
            "203d494428b8399352665ddca42f9de8fef600908e0d461cb021f8c538345dd7
             7c3e4806e25f46d3315c44e0a5b4371282dd2c8d5be3095f",
            "0fbcc2f993cd56d3305b0b7d9e55d4c1a8fb5dbb52f8e9a1e9b6201b165d0158
             94e56c4d3570bee52fe205e28a78b91cdfbde71ce8d157db",
            "884a02576239ff7a2f2f63b2db6a9ff37047ac13568e1e30fe63c4a7ad1b3ee3
             a5700df34321d62077e63633c575c1c954514e99da7c179d",
        ),
    ];
    for (k, u, out) in vectors {
        assert_eq!(scalarmult(X448, &h(k), &h(u)), h(out));
    }
}

/// RFC 7748 §5.2 iteration: k = u = 5; repeatedly (k, u) = (X448(k, u), k).
fn x448_iterate(n: usize) -> Vec<u8> {
    let mut k = vec![0u8; 56];
    k[0] = 5;
    let mut u = k.clone();
    for _ in 0..n {
        let r = scalarmult(X448, &k, &u);
        u = std::mem::replace(&mut k, r);
    }
    k
}

#[test]
fn x448_rfc7748_5_2_one_iteration() {
    assert_eq!(
        x448_iterate(1),
        h(
            "3f482c8a9f19b01e6c46ee9711d9dc14fd4bf67af30765c2ae2b846a4d23a8cd
           0db897086239492caf350b51f833868b9bc2b3bca9cf4113"
        )
    );
}

/// About 0.7 s: the workspace builds dependencies with opt-level 3 even in test profiles.
#[test]
fn x448_rfc7748_5_2_1000_iterations() {
    assert_eq!(
        x448_iterate(1000),
        h(
            "aa3b4749d55b9daf1e5b00288826c467274ce3ebbdd5c17b975e09d4af6c67cf
           10d087202db88286e2b79fceea3ec353ef54faa26e219f38"
        )
    );
}

#[test]
fn x448_rfc7748_6_2_diffie_hellman() {
    let alice_priv = h("9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28d
                        d9c9baf574a9419744897391006382a6f127ab1d9ac2d8c0a598726b");
    let alice_pub = h("9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c
                       22c5d9bbc836647241d953d40c5b12da88120d53177f80e532c41fa0");
    let bob_priv = h("1c306a7ac2a0e2e0990b294470cba339e6453772b075811d8fad0d1d
                      6927c120bb5ee8972b0d3e21374c9c921b09d1b0366f10b65173992d");
    let bob_pub = h("3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b430
                     27d8b972fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609");
    let k = h("07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282b
               b60c0b56fd2464c335543936521c24403085d59a449a5037514a879d");

    let alice = secret(X448, &alice_priv);
    let bob = secret(X448, &bob_priv);
    assert_eq!(alice.public(), &alice_pub[..]);
    assert_eq!(bob.public(), &bob_pub[..]);
    assert_eq!(alice.agree(&bob_pub).expect("agree").as_bytes(), &k[..]);
    assert_eq!(bob.agree(&alice_pub).expect("agree").as_bytes(), &k[..]);
}

#[test]
fn x448_rejects_wrong_lengths() {
    for len in [0, 1, 32, 55, 57, 69, 112] {
        let s = kex(X448).generate(&mut OsRng).expect("keygen");
        assert_eq!(
            s.agree(&vec![5; len]).err(),
            Some(CryptoError::InvalidPublicKey),
            "{len}"
        );
    }
}

#[test]
fn x448_low_order_points_give_all_zero_secret() {
    let mut zero = vec![0u8; 56];
    let mut one = zero.clone();
    one[0] = 1;
    let low_order = [
        std::mem::take(&mut zero),
        one,
        // u = p - 1 (order 2), and the non-canonical u = p (= 0) and p + 1 (= 1).
        h("fefffffffffffffffffffffffffffffffffffffffffffffffffffffffe
           ffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
        h("fffffffffffffffffffffffffffffffffffffffffffffffffffffffffe
           ffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
        h("00000000000000000000000000000000000000000000000000000000
           ffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    ];
    for u in low_order {
        let s = kex(X448).generate(&mut OsRng).expect("keygen");
        assert_eq!(
            s.agree(&u).err(),
            Some(CryptoError::AllZeroSharedSecret),
            "{}",
            hex::encode(&u)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// P-256 and P-521 (RFC 8548 §5, IEEE 1363)
// ---------------------------------------------------------------------------------------------

const P256_GX: &str = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const P256_N_MINUS_1: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550";
const P256_P: &str = "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff";

const P521_GX: &str = "00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa1
                       4b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66";
const P521_N: &str = "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff
                      fa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409";
const P521_N_MINUS_1: &str = "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff
                      fa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386408";

/// A big-endian integer of `len` bytes with value `v`.
fn be(v: u8, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    out[len - 1] = v;
    out
}

/// `pubkey_len || tag || x`, the `Pub` field of RFC 8548 §5.
fn pub_field(tag: u8, x: &[u8]) -> Vec<u8> {
    let mut out = ((1 + x.len()) as u16).to_be_bytes().to_vec();
    out.push(tag);
    out.extend_from_slice(x);
    out
}

#[test]
fn p256_private_key_1_is_the_generator() {
    // G's y ends in 0xf5 (odd): compressed tag 0x03. pubkey_len = 33 = 0x0021.
    let s = secret(P256, &be(1, 32));
    assert_eq!(s.public(), &h(&format!("0021 03 {P256_GX}"))[..]);
    assert_eq!(s.public().len(), 35);
    // -G = (n-1)G has the same x and the other parity.
    let s = secret(P256, &h(P256_N_MINUS_1));
    assert_eq!(s.public(), &h(&format!("0021 02 {P256_GX}"))[..]);
}

#[test]
fn p521_private_key_1_is_the_generator() {
    // G's y ends in 0x50 (even): compressed tag 0x02. pubkey_len = 67 = 0x0043.
    let s = secret(P521, &be(1, 66));
    assert_eq!(s.public(), &h(&format!("0043 02 {P521_GX}"))[..]);
    assert_eq!(s.public().len(), 69);
    let s = secret(P521, &h(P521_N_MINUS_1));
    assert_eq!(s.public(), &h(&format!("0043 03 {P521_GX}"))[..]);
}

#[test]
fn p256_nist_cdh_vector() {
    // CAVS 14.1 ECC CDH, P-256 COUNT = 0. QIUTy ends in 0x41 (odd), QCAVSy in 0xac (even).
    let d = h("7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534");
    let qiut_x = h("ead218590119e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b230");
    let qcavs_x = h("700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287");
    let z = h("46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b");
    let s = secret(P256, &d);
    assert_eq!(s.public(), &pub_field(0x03, &qiut_x)[..]);
    assert_eq!(
        s.agree(&pub_field(0x02, &qcavs_x))
            .expect("agree")
            .as_bytes(),
        &z[..]
    );
}

#[test]
fn p521_nist_cdh_vector() {
    // CAVS 14.1 ECC CDH, P-521 COUNT = 0. ES is 66 bytes, left-padded (it starts with 0x00).
    let d = h(
        "017eecc07ab4b329068fba65e56a1f8890aa935e57134ae0ffcce802735151f4eac6
               564f6ee9974c5e6887a1fefee5743ae2241bfeb95d5ce31ddcb6f9edb4d6fc47",
    );
    let qiut_x = h(
        "00602f9d0cf9e526b29e22381c203c48a886c2b0673033366314f1ffbcba240ba42f
                    4ef38a76174635f91e6b4ed34275eb01c8467d05ca80315bf1a7bbd945f550a5",
    );
    let qcavs_x = h(
        "00685a48e86c79f0f0875f7bc18d25eb5fc8c0b07e5da4f4370f3a9490340854334b
                     1e1b87fa395464c60626124a4e70d0f785601d37c09870ebf176666877a2046d",
    );
    let z = h(
        "005fc70477c3e63bc3954bd0df3ea0d1f41ee21746ed95fc5e1fdf90930d5e136672
               d72cc770742d1711c3c3a4c334a0ad9759436a4d3c5bf6e74b9578fac148c831",
    );
    let s = secret(P521, &d);
    // QIUTy ends in 0x2d (odd); QCAVSy ends in 0x76 (even).
    assert_eq!(s.public(), &pub_field(0x03, &qiut_x)[..]);
    let es = s.agree(&pub_field(0x02, &qcavs_x)).expect("agree");
    assert_eq!(es.as_bytes().len(), 66);
    assert_eq!(es.as_bytes(), &z[..]);
}

#[test]
fn generation_retries_invalid_scalars() {
    // P-256: n is not a valid scalar; the next draw (1) is.
    let mut rng = FixedRng::new([h(P256_N), be(0, 32), be(1, 32)].concat());
    let s = kex(P256).generate(&mut rng).expect("keygen");
    assert_eq!(s.public(), &h(&format!("0021 03 {P256_GX}"))[..]);
    // P-521: 66 bytes of 0xff mask to 2^521 - 1 >= n; then n itself; then 0xfe || 0.. || 1
    // masks to 1 (the top 7 bits of the first byte are cleared).
    let mut masked_one = be(1, 66);
    masked_one[0] = 0xfe;
    let mut rng = FixedRng::new([vec![0xff; 66], h(P521_N), masked_one].concat());
    let s = kex(P521).generate(&mut rng).expect("keygen");
    assert_eq!(s.public(), &h(&format!("0043 02 {P521_GX}"))[..]);
}

#[test]
fn generation_gives_up_on_a_broken_rng() {
    for tep in [P256, P521] {
        for byte in [0x00, 0xff] {
            assert_eq!(
                kex(tep).generate(&mut ConstRng(byte)).err(),
                Some(CryptoError::KeyGeneration),
                "{tep} {byte:#x}"
            );
        }
    }
}

#[test]
fn nist_edge_x_values_on_the_curve_are_accepted() {
    // x = 0 is on both curves; x = p - 1 is on P-521. Agreement must succeed (x in range).
    let p521_p_minus_1 = {
        let mut x = vec![0xff; 66];
        x[0] = 0x01;
        x[65] = 0xfe;
        x
    };
    let cases = [
        (P256, be(0, 32)),
        (P521, be(0, 66)),
        (P521, be(1, 66)),
        (P521, p521_p_minus_1),
    ];
    for (tep, x) in cases {
        for tag in [0x02, 0x03] {
            let s = kex(tep).generate(&mut OsRng).expect("keygen");
            let es = s.agree(&pub_field(tag, &x)).expect("on-curve point");
            assert_eq!(es.as_bytes().len(), kex(tep).shared_secret_len());
        }
    }
}

#[test]
fn nist_rejects_malformed_public_keys() {
    let p256_p = h(P256_P);
    let p256_p_plus_1 = h("ffffffff00000001000000000000000000000001000000000000000000000000");
    let p521_p = {
        let mut x = vec![0xff; 66];
        x[0] = 0x01;
        x
    };
    let p521_p_plus_1 = {
        let mut x = vec![0u8; 66];
        x[0] = 0x02;
        x
    };
    let p256_g = h(P256_GX);
    let p521_g = h(P521_GX);
    // x = p reduces to 0 and x = p + 1 to 1, both on P-521 (and 0 on P-256): only the range check
    // of IEEE 1363 §A.16.10 rejects them.
    let not_in_range: [(TepId, Vec<u8>); 6] = [
        (P256, p256_p),
        (P256, p256_p_plus_1),
        (P256, vec![0xff; 32]),
        (P521, p521_p),
        (P521, p521_p_plus_1),
        (P521, vec![0xff; 66]),
    ];
    // Smallest x with no point: x³ - 3x + b is a non-residue mod p.
    let not_on_curve = [(P256, be(1, 32)), (P521, be(3, 66))];

    let mut bad: Vec<(TepId, Vec<u8>, &str)> = Vec::new();
    for (tep, x) in not_in_range {
        bad.push((tep, pub_field(0x02, &x), "x >= p"));
    }
    for (tep, x) in not_on_curve {
        bad.push((tep, pub_field(0x02, &x), "not on curve"));
        bad.push((tep, pub_field(0x03, &x), "not on curve"));
    }
    for (tep, gx) in [(P256, &p256_g), (P521, &p521_g)] {
        let good = pub_field(0x03, gx);
        // Tags other than the compressed ones, with a valid x (A8: only 0x02/0x03).
        for tag in [0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0xff] {
            bad.push((tep, pub_field(tag, gx), "tag"));
        }
        // The point at infinity (a lone 0x00) and an uncompressed point with a matching prefix.
        bad.push((tep, vec![0x00, 0x01, 0x00], "infinity"));
        let mut uncompressed = pub_field(0x04, gx);
        uncompressed.extend_from_slice(&vec![0x11; gx.len()]);
        uncompressed[..2].copy_from_slice(&((1 + 2 * gx.len()) as u16).to_be_bytes());
        bad.push((tep, uncompressed, "uncompressed"));
        // Wrong length prefixes on an otherwise good point.
        for prefix in [
            0x0000u16, 0x0001, 0x0020, 0x0022, 0x0042, 0x0044, 0x2100, 0xffff,
        ] {
            let mut f = good.clone();
            f[..2].copy_from_slice(&prefix.to_be_bytes());
            if f != good {
                bad.push((tep, f, "prefix"));
            }
        }
        // Every wrong total length: truncations and extensions of the good field.
        for len in 0..good.len() + 3 {
            if len != good.len() {
                let mut f = good.clone();
                f.resize(len, 0);
                bad.push((tep, f, "length"));
            }
        }
        // Sanity: the good field itself agrees.
        let s = kex(tep).generate(&mut OsRng).expect("keygen");
        assert!(s.agree(&good).is_ok(), "{tep} generator");
    }
    for (tep, field, why) in bad {
        let s = kex(tep).generate(&mut OsRng).expect("keygen");
        assert_eq!(
            s.agree(&field).err(),
            Some(CryptoError::InvalidPublicKey),
            "{tep} {why} {}",
            hex::encode(&field)
        );
    }
}

#[test]
fn nist_curves_reject_the_other_curves_keys() {
    let p256 = kex(P256).generate(&mut OsRng).expect("keygen");
    let p521 = kex(P521).generate(&mut OsRng).expect("keygen");
    let p256_pub = p256.public().to_vec();
    assert_eq!(
        p256.agree(p521.public()).err(),
        Some(CryptoError::InvalidPublicKey)
    );
    assert_eq!(
        p521.agree(&p256_pub).err(),
        Some(CryptoError::InvalidPublicKey)
    );
}

// ---------------------------------------------------------------------------------------------
// Every TEP: agreement, determinism, garbage input
// ---------------------------------------------------------------------------------------------

#[test]
fn both_sides_agree_for_every_tep() {
    for tep in TepId::TCPCRYPT_ALL {
        let ka = kex(tep);
        for _ in 0..4 {
            let a = ka.generate(&mut OsRng).expect("keygen");
            let b = ka.generate(&mut OsRng).expect("keygen");
            assert_eq!(a.public().len(), ka.public_len(), "{tep}");
            assert_ne!(a.public(), b.public(), "{tep}");
            let (pa, pb) = (a.public().to_vec(), b.public().to_vec());
            let ea = a.agree(&pb).expect("agree");
            let eb = b.agree(&pa).expect("agree");
            assert_eq!(ea.as_bytes().len(), ka.shared_secret_len(), "{tep}");
            assert_eq!(ea.as_bytes(), eb.as_bytes(), "{tep}");
        }
    }
}

#[test]
fn seeded_rng_gives_the_same_keys() {
    for tep in TepId::TCPCRYPT_ALL {
        let ka = kex(tep);
        let a1 = ka.generate(&mut SeededRng(42)).expect("keygen");
        let a2 = ka.generate(&mut SeededRng(42)).expect("keygen");
        let b = ka.generate(&mut SeededRng(43)).expect("keygen");
        assert_eq!(a1.public(), a2.public(), "{tep}");
        assert_ne!(a1.public(), b.public(), "{tep}");
        let pb = b.public().to_vec();
        let e1 = a1.agree(&pb).expect("agree");
        let e2 = a2.agree(&pb).expect("agree");
        assert_eq!(e1.as_bytes(), e2.as_bytes(), "{tep}");
    }
}

#[test]
fn garbage_public_keys_never_panic() {
    let mut rng = SeededRng(7);
    for tep in TepId::TCPCRYPT_ALL {
        let ka = kex(tep);
        for len in 0..80usize {
            for round in 0..8 {
                let mut field = vec![0u8; len];
                rng.fill(&mut field);
                if round % 2 == 1 && len == ka.public_len() && tep.get() <= 0x22 {
                    // Give the NIST curves a well-formed prefix and tag, so x is exercised.
                    let point_len = (len - 2) as u16;
                    field[..2].copy_from_slice(&point_len.to_be_bytes());
                    field[2] = 0x02 | (field[2] & 1);
                }
                let s = ka.generate(&mut OsRng).expect("keygen");
                match s.agree(&field) {
                    Ok(es) => assert_eq!(es.as_bytes().len(), ka.shared_secret_len()),
                    Err(e) => assert!(
                        matches!(
                            e,
                            CryptoError::InvalidPublicKey | CryptoError::AllZeroSharedSecret
                        ),
                        "{tep} {e:?}"
                    ),
                }
            }
        }
    }
}

#[test]
fn shared_secret_debug_is_redacted() {
    let a = kex(X25519).generate(&mut SeededRng(1)).expect("keygen");
    let b = kex(X25519).generate(&mut SeededRng(2)).expect("keygen");
    let es = a.agree(b.public()).expect("agree");
    let dbg = format!("{es:?}");
    assert!(!dbg.contains(&hex::encode(es.as_bytes())), "{dbg}");
}

// ---------------------------------------------------------------------------------------------
// AEADs (RFC 8548 §6)
// ---------------------------------------------------------------------------------------------

/// Seals `plain` and checks ciphertext and tag, then opens the result back.
fn aead_kat(id: AeadId, key: &str, nonce: &str, aad: &str, plain: &[u8], cipher: &str, tag: &str) {
    let k = DEFAULT_PROVIDER
        .aead(id)
        .expect("registered AEAD")
        .new_key(&h(key))
        .expect("key length");
    let nonce: [u8; 12] = h(nonce).try_into().expect("12-byte nonce");
    let aad = h(aad);
    let expected = [h(cipher), h(tag)].concat();

    let mut buf = plain.to_vec();
    buf.resize(plain.len() + AEAD_TAG_LEN, 0xaa);
    k.seal_in_place(&nonce, &aad, &mut buf);
    assert_eq!(hex::encode(&buf), hex::encode(&expected), "{id} seal");

    k.open_in_place(&nonce, &aad, &mut buf).expect("opens");
    assert_eq!(&buf[..plain.len()], plain, "{id} open");

    // A flipped tag bit fails authentication.
    let mut buf = expected.clone();
    let last = buf.len() - 1;
    buf[last] ^= 0x01;
    assert_eq!(
        k.open_in_place(&nonce, &aad, &mut buf),
        Err(CryptoError::Authentication),
        "{id} tag flip"
    );
}

#[test]
fn chacha20_poly1305_rfc8439_2_8_2() {
    aead_kat(
        AeadId::CHACHA20_POLY1305,
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "070000004041424344454647",
        "50515253c0c1c2c3c4c5c6c7",
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for \
          the future, sunscreen would be it.",
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
         3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
         92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
         3ff4def08e4b7a9de576d26586cec64b6116",
        "1ae10b594f09e26a7e902ecbd0600691",
    );
}

const GCM_P: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
                     1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const GCM_A: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
const GCM_IV: &str = "cafebabefacedbaddecaf888";

#[test]
fn aes_128_gcm_mcgrew_viega_1_to_4() {
    let id = AeadId::AES_128_GCM;
    let zero_key = "00000000000000000000000000000000";
    let zero_iv = "000000000000000000000000";
    // Test case 1: empty plaintext, empty AAD.
    let t1 = "58e2fccefa7e3061367f1d57a4e7455a";
    aead_kat(id, zero_key, zero_iv, "", b"", "", t1);
    // Test case 2: one zero block.
    let (c2, t2) = (
        "0388dace60b6a392f328c2b971b2fe78",
        "ab6e47d42cec13bdf53a67b21257bddf",
    );
    aead_kat(id, zero_key, zero_iv, "", &[0; 16], c2, t2);
    let key = "feffe9928665731c6d6a8f9467308308";
    let c3 = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
              21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985";
    // Test case 3: four blocks, no AAD.
    let t3 = "4d5c2af327cd64a62cf35abd2ba6fab4";
    aead_kat(id, key, GCM_IV, "", &h(GCM_P), c3, t3);
    // Test case 4: 60 bytes of plaintext, 20 bytes of AAD.
    let c4: String = c3
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(120)
        .collect();
    let t4 = "5bc94fbc3221a5db94fae95ae7121a47";
    aead_kat(id, key, GCM_IV, GCM_A, &h(GCM_P)[..60], &c4, t4);
}

#[test]
fn aes_256_gcm_mcgrew_viega_13_to_16() {
    let id = AeadId::AES_256_GCM;
    let zero_key = "0000000000000000000000000000000000000000000000000000000000000000";
    let zero_iv = "000000000000000000000000";
    // Test case 13: empty plaintext.
    let t13 = "530f8afbc74536b9a963b4f1c4cb738b";
    aead_kat(id, zero_key, zero_iv, "", b"", "", t13);
    // Test case 14: one zero block.
    let (c14, t14) = (
        "cea7403d4d606b6e074ec5d3baf39d18",
        "d0d1c8a799996bf0265b98b5d48ab919",
    );
    aead_kat(id, zero_key, zero_iv, "", &[0; 16], c14, t14);
    let key = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
    let c15 = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
               8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
    // Test case 15: four blocks, no AAD.
    let t15 = "b094dac5d93471bdec1a502270e3cc6c";
    aead_kat(id, key, GCM_IV, "", &h(GCM_P), c15, t15);
    // Test case 16: 60 bytes of plaintext, 20 bytes of AAD.
    let c16: String = c15
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(120)
        .collect();
    let t16 = "76fc6ece0f4e1768cddf8853bb2d551b";
    aead_kat(id, key, GCM_IV, GCM_A, &h(GCM_P)[..60], &c16, t16);
}

#[test]
fn aead_keys_of_the_wrong_length_are_rejected() {
    for id in AeadId::ALL {
        let alg = DEFAULT_PROVIDER.aead(id).expect("registered AEAD");
        assert_eq!(
            alg.new_key(&[0; 24]).err(),
            Some(CryptoError::KeyLength),
            "{id}"
        );
    }
}
