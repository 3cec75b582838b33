import os
import uuid

from switchboard_kit.ids import new_id


def test_ids_are_version_4_uuids_in_canonical_form() -> None:
    for _ in range(3000):  # crosses several buffer refills
        text = new_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_ids_do_not_repeat() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_reuse_the_parents_buffer() -> None:
    new_id()  # the parent has a partly used buffer
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        os.write(write, "".join(new_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    child = b""
    while chunk := os.read(read, 4096):
        child += chunk
    os.close(read)
    os.waitpid(pid, 0)
    parent = "".join(new_id() for _ in range(10)).encode()
    assert child and child != parent
    child_ids = {child[i : i + 36] for i in range(0, len(child), 36)}
    assert not child_ids & {parent[i : i + 36] for i in range(0, len(parent), 36)}
