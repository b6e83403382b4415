# The shared SUIT vectors' facts (../shared/README.md) that several device cases check against.
from hgtest import unhex

IETF_PUB = unhex("048496811aae0baaabd26157189eecda26beaa8bf11b6f3fe6e2b5659c85dbc0ad3b1f2a4b6c098131c0a36dacd1d78bd381"
                 "dcdfb09c052db33991db7338b4a896")  # ietf_example_pub.pem = libcsuit's trust_anchor_secp256r1_pub.pem
TABLE = {  # file: (sequence number, manifest digest) from ../shared/README.md
    "example0": (0, "6658ea560262696dd1f13b782239a064da7c6c5cbaf52fded428a6fc83c7e5af"),
    "example1": (1, "1f2e7acca0dc2786f2fe4eb947f50873a6a3cfaa98866c5b02e621f42074daf2"),
    "example2": (2, "6a5197ed8f9dccf733d1c89a359441708e070b4c6dcb9a1c2c82c6165f609b90"),
    "example2-severed": (2, "6a5197ed8f9dccf733d1c89a359441708e070b4c6dcb9a1c2c82c6165f609b90"),
    "example3": (3, "f6d44a62ec906b392500c242e78e908e9cc5057f3f04104a06a8566200da2ee0"),
    "example4": (4, "5b5f6586b1e6cdf19ee479a5adabf206581000bd584b0832a9bdaf4f72cdbdd6"),
    "example5": (5, "15ce60f77657e4531dc329155f8b0ed78f94bdc6d165b2665473693dcc34f470"),
    "suit_manifest_exp0": (0, "6658ea560262696dd1f13b782239a064da7c6c5cbaf52fded428a6fc83c7e5af"),
}
