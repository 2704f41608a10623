"""The operator's platform, fed from the chain: contract prices, the wholesale price series, the
30-minute balance (同時同量) and the monthly statements per member."""
