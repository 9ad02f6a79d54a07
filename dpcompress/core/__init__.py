"""What every layer uses: errors and warnings, the validation of user input, activations and
dense networks, the environment matrix and the table polynomials in numpy."""
