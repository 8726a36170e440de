"""Message outcomes: delivery events, goals and their attribution, the uplift report."""
