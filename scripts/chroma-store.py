"""A small persistent Chroma store with explicit embeddings (no model download), for sealbak's tests and demo.

    python chroma-store.py make PATH     # two collections with deterministic embeddings
    python chroma-store.py hold PATH     # keep the store open (a live application) until killed
    python chroma-store.py query PATH    # print the nearest ids of fixed queries, one line per collection
"""
import os, sys, time
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
import chromadb
from chromadb.config import Settings

mode, path = sys.argv[1], sys.argv[2]
client = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))

def emb(i, dim):
    return [((i * 31 + j * 17) % 101) / 101.0 - 0.5 for j in range(dim)]

COLLECTIONS = {"docs": (120, 16), "chat": (45, 8)}
if mode == "make":
    for name, (n, dim) in COLLECTIONS.items():
        col = client.get_or_create_collection(name, embedding_function=None, metadata={"hnsw:space": "l2"})
        col.add(ids=[f"{name}-{i}" for i in range(n)], embeddings=[emb(i, dim) for i in range(n)],
                documents=[f"{name} text {i}" for i in range(n)], metadatas=[{"n": i} for i in range(n)])
elif mode == "hold":
    col = client.get_collection("docs", embedding_function=None)
    print("holding", col.count(), flush=True)
    while True:
        time.sleep(0.2)
elif mode == "query":
    for name, (n, dim) in COLLECTIONS.items():
        col = client.get_collection(name, embedding_function=None)
        q = col.query(query_embeddings=[emb(7, dim)], n_results=5)
        print(name, col.count(), ",".join(q["ids"][0]))
