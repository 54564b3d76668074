"""The reference interpreter: executes VM IR in numpy, the definition of what programs mean."""
