from huggingface_hub import login

login(token="hf_DhU4XgaOzyx7J3SdoVwgP4FmErxTM1cHho")
PART = "hf_" + "4PAAANvkYfQv9NomB" + "bjl2y4y5qtO2oSoJG"
PLACEHOLDER = 'hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
