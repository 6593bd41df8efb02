import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Run the contract suite single-threaded: its thousands of small forward/backward passes spend more
    time synchronising two intra-op threads than computing (over 10x slower on a busy two-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
